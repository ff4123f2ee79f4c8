"""Opening a slide at real scale: time to first pixels and peak memory, 100k vs 10k px.

    python tests/benchmarks/bench_slide_open.py [--sizes 100000 10000] [--tiles 2000]
                                                [--keep DIR] [--runs 3]

Builds (in a temporary folder, or reuses from --keep) JPEG-tiled pyramidal TIFFs with
make_large_slide.py, then for each size runs fresh child processes that

- time ``open_source()`` -> first thumbnail pixels (the window's 1024 px overview);
  target <= 1 s at 100k x 100k;
- time tissue detection and ``make_grid``;
- open the slide, build the grid and read ``--tiles`` tiles spread over it through
  ``Source.read_tile`` (the path the inference readers use), 2 reader threads with their
  own handles, and report the child's peak RSS; target: 100k peak <= 1.5x the 10k peak.

The files were just written, so they are in the OS page cache: the times are warm-cache
times (dropping the cache needs root); the first-pixels figure is the median of --runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from make_large_slide import auto_levels, make_large_slide  # noqa: E402

CHILD = r"""
import json, resource, sys, threading, time
t_import = time.perf_counter()
from pvdesk.slides import open_source
from pvdesk.tiling import make_grid
from pvdesk.tissue import TissueParams, detect_tissue

def rss():
    # peak resident set of this process image, MiB. VmHWM, not ru_maxrss: on Linux the
    # latter keeps the parent's high-water mark across fork + exec.
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

path, mode, ntiles = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"import_s": time.perf_counter() - t_import}
t = time.perf_counter()
src = open_source(path)
out["open_s"] = time.perf_counter() - t
thumb = src.thumbnail(1024)
out["first_pixels_s"] = time.perf_counter() - t
out["thumb"] = list(thumb.size)
out["levels"] = [list(d) for d in src.level_dimensions]
out["rss_after_thumb"] = rss()
if mode == "full":
    t = time.perf_counter()
    mask = detect_tissue(src, TissueParams())
    out["tissue_s"] = time.perf_counter() - t
    t = time.perf_counter()
    grid = make_grid(src, mask=mask)
    out["grid_s"] = time.perf_counter() - t
    out["positions"], out["tiles"] = grid.total_positions, len(grid)
    out["rss_after_grid"] = rss()
    step = max(1, len(grid.tiles) // ntiles)
    tiles = grid.tiles[::step][:ntiles]
    if tiles:  # a small slide: the same count, some tiles twice (the OS cache has them)
        tiles = (tiles * -(-ntiles // len(tiles)))[:ntiles]
    handles = [src.clone() for _ in range(2)]

    def work(h, chunk):
        for tile in chunk:
            h.read_tile(tile, grid)

    t = time.perf_counter()
    threads = [threading.Thread(target=work, args=(h, tiles[i::2]))
               for i, h in enumerate(handles)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out["read_s"], out["read_n"] = time.perf_counter() - t, len(tiles)
    for h in handles:
        h.close()
    out["rss_peak"] = rss()
src.close()
print(json.dumps(out))
"""


def child(path: Path, mode: str, tiles: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(tiles)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"child failed on {path}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 10_000])
    ap.add_argument("--tiles", type=int, default=2000, help="tiles read in the memory run")
    ap.add_argument("--runs", type=int, default=3, help="first-pixels runs per size")
    ap.add_argument("--keep", help="build the slides here and reuse them next time")
    ap.add_argument("--levels", default="auto",
                    help="pyramid levels: 'auto' halves down to <= 2048 px like a scanner "
                         "(7 at 100k); 5 gives a 6250 px coarsest level at 100k")
    args = ap.parse_args()

    tmp = None
    if args.keep:
        folder = Path(args.keep)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name)
    results = {}
    for size in args.sizes:
        levels = auto_levels(size) if args.levels == "auto" else int(args.levels)
        scale = max(1, round(size / 50_000))  # keeps the mosaic's pieces above the
        # tissue detector's minimum object size (a share of the slide's area)
        path = folder / f"large_{size}_l{levels}_s{scale}.tiff"
        if not path.exists():
            t = time.perf_counter()
            make_large_slide(path, size, levels=levels, pattern_scale=scale)
            print(f"built {path.name}: {size} x {size} px, {path.stat().st_size / 2**20:.0f} MiB "
                  f"in {time.perf_counter() - t:.1f} s", flush=True)
        first = [child(path, "open", 0) for _ in range(args.runs)]
        full = child(path, "full", args.tiles)
        results[size] = (first, full)
        fp = statistics.median(r["first_pixels_s"] for r in first)
        print(f"{size} x {size} px ({len(full['levels'])} levels, coarsest "
              f"{full['levels'][-1][0]} x {full['levels'][-1][1]}):")
        print(f"  open_source -> first thumbnail pixels: median {fp:.2f} s over {args.runs} runs "
              f"(open {statistics.median(r['open_s'] for r in first):.2f} s; "
              f"thumbnail {full['thumb'][0]} x {full['thumb'][1]} px; target <= 1 s)")
        print(f"  tissue detection {full['tissue_s']:.2f} s, make_grid {full['grid_s']:.2f} s: "
              f"{full['tiles']} tissue tiles of {full['positions']} positions")
        print(f"  read {full['read_n']} tiles (2 threads): {full['read_s']:.1f} s, "
              f"{full['read_n'] / full['read_s']:.0f} tiles/s")
        print(f"  peak RSS: {full['rss_after_thumb']:.0f} MiB after the thumbnail, "
              f"{full['rss_after_grid']:.0f} MiB after the grid, {full['rss_peak']:.0f} MiB "
              f"after the reads", flush=True)
    if len(results) >= 2:
        big, small = max(results), min(results)
        ratio = results[big][1]["rss_peak"] / results[small][1]["rss_peak"]
        print(f"peak RSS {big} px / {small} px: {results[big][1]['rss_peak']:.0f} / "
              f"{results[small][1]['rss_peak']:.0f} MiB = {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
