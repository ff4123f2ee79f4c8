"""Foundation benchmark: tile read + resize throughput, tissue detection time, peak memory.

    python tests/benchmarks/bench_tiling.py [--size 40960] [--tiles 3000] [--slide PATH]

Builds (or reuses) the large synthetic slide, then measures, side by side in one run:
tissue detection on the thumbnail, and tiles/s for read + resize to 224 px with 1 and 2
reader threads (each thread with its own slide handle).
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

from make_large_slide import make_large_slide  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=40960)
    ap.add_argument("--tiles", type=int, default=3000, help="tiles read per measurement")
    ap.add_argument("--slide", help="reuse this slide instead of building one")
    args = ap.parse_args()

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
