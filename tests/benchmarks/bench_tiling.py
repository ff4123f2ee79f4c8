"""Foundation benchmark: make_grid at scale, tile read + resize throughput, tissue
detection time, peak memory.

    python tests/benchmarks/bench_tiling.py [--size 40960] [--tiles 3000] [--slide PATH]
                                            [--grid-only]

First ``make_grid`` on 160,000 grid positions (400 x 400) at 0% and 50% overlap, the
vectorised grid side by side with the per-position loop it replaced (kept in
tests/tiling_reference.py; target <= 0.5 s). Then builds (or reuses) the large synthetic
slide and measures, side by side in one run: tissue detection on the thumbnail, and
tiles/s for read + resize to 224 px with 1 and 2 reader threads (each thread with its own
slide handle).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "tests"))

from make_large_slide import make_large_slide  # noqa: E402
from tiling_reference import GeometrySource, blob_mask, make_grid_reference  # noqa: E402

from pvdesk.slides import open_source  # noqa: E402
from pvdesk.tiling import make_grid  # noqa: E402
from pvdesk.tissue import TissueParams, detect_tissue  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_tiles(src, grid, tiles, threads: int) -> float:
    """Tiles/s for reading and resizing ``tiles`` split across ``threads`` handles."""
    handles = [src.clone() for _ in range(threads)]
    chunks = [tiles[i::threads] for i in range(threads)]

    def work(h, chunk):
        for t in chunk:
            h.read_tile(t, grid)

    workers = [threading.Thread(target=work, args=(h, c)) for h, c in zip(handles, chunks,
                                                                            strict=True)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    dt = time.perf_counter() - t0
    for h in handles:
        h.close()
    return len(tiles) / dt


def bench_make_grid(positions_per_side: int = 400, repeats: int = 3) -> None:
    """make_grid on positions_per_side^2 positions, new vs old, at 0% and 50% overlap."""
    side_px = 224  # 112 um at 0.5 um/px
    for overlap in (0.0, 0.5):
        stride = round(side_px * (1 - overlap))
        size = side_px + stride * (positions_per_side - 1)
        src = GeometrySource(size, size, mpp=0.5)
        mask = blob_mask(size, size, seed=1, density=0.5)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            grid = make_grid(src, overlap=overlap, mask=mask)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        old = make_grid_reference(src, overlap=overlap, mask=mask)
        t_old = time.perf_counter() - t
        same = "identical" if old.tiles == grid.tiles else "DIFFERENT"
        print(f"make_grid {grid.total_positions} positions, {overlap:.0%} overlap, "
              f"{len(grid)} tissue tiles: {min(times):.3f} s (best of {repeats}), "
              f"per-position loop {t_old:.2f} s (x{t_old / min(times):.0f}); tiles {same}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=40960)
    ap.add_argument("--tiles", type=int, default=3000, help="tiles read per measurement")
    ap.add_argument("--slide", help="reuse this slide instead of building one")
    ap.add_argument("--grid-only", action="store_true", help="only the make_grid figures")
    args = ap.parse_args()

    bench_make_grid()
    if args.grid_only:
        return

    tmp = tempfile.TemporaryDirectory()
    path = Path(args.slide) if args.slide else Path(tmp.name) / "large.tiff"
    if not path.exists():
        t = time.perf_counter()
        make_large_slide(path, args.size)
        print(f"built {path.name}: {args.size} x {args.size} px, "
              f"{path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t:.1f} s")
    print(f"peak RSS after build: {peak_mib():.0f} MiB")

    with open_source(path) as src:
        w, h = src.dimensions
        t = time.perf_counter()
        mask = detect_tissue(src, TissueParams())
        t_tissue = time.perf_counter() - t
        t = time.perf_counter()
        grid = make_grid(src, mask=mask)
        t_grid = time.perf_counter() - t
        print(f"slide {w} x {h} px, {src.level_count} levels, mpp {src.mpp}")
        print(f"tissue detection: {t_tissue:.2f} s ({mask.fraction_total:.1%} tissue); "
              f"grid of {len(grid)} tissue tiles from {grid.total_positions} in {t_grid:.2f} s")
        # spread the measured tiles over the whole slide, not one corner
        step = max(1, len(grid.tiles) // args.tiles)
        tiles = grid.tiles[::step][: args.tiles]
        read_tiles(src, grid, tiles[:100], 1)  # warm the OS cache and the decoder
        rates = {n: read_tiles(src, grid, tiles, n) for n in (1, 2)}
        print(f"read + resize to {grid.out_size} px ({len(tiles)} tiles, level {grid.level}): "
              f"1 thread {rates[1]:.0f} tiles/s, 2 threads {rates[2]:.0f} tiles/s "
              f"(x{rates[2] / rates[1]:.2f})")
        print(f"whole grid at 2 threads: about {len(grid) / rates[2]:.0f} s")
    print(f"peak RSS: {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
