"""GPU check: demo-clip-rn50 and demo-resnet50 tiles/s end to end and model-only.

    python tests/benchmarks/bench_gpu.py [--device auto] [--tiles N] [--slide PATH]
        [--size 40960] [--batch B] [--workers W] [--repeats 2]

On the chosen device (auto: CUDA when present), for each demo bundle (the real architectures,
random weights, precision "auto": fp16 on CUDA):
- model-only: uint8 batches already on the device through ``forward_device`` (resize and
  normalisation on the device included), timed until the device has finished;
- end-to-end: the InferenceEngine over the first N tissue tiles of a JPEG-tiled synthetic
  slide (row-major, as a real run reads them), with the engine's defaults for the device
  (reader threads, batch size, pinned buffers, pipelining) unless --batch/--workers say;
- readers alone: the same tiles read by the same threads with no model (the ceiling the
  slide's decoding puts on end-to-end);
- both bundles in one pass.
Goal (issue 10): CLIP RN50 >= 3,000 tiles/s end to end on one H100-class GPU and >= 0.8x its
model-only rate. Prints numbers; asserts nothing. On a CPU it runs a small version (32 tiles,
one pass, a 8192 px slide) so that the script itself is checked without a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from make_large_slide import make_large_slide  # noqa: E402

from pvdesk import heavy  # noqa: E402
from pvdesk.inference import BatchReader, InferenceEngine  # noqa: E402
from pvdesk.inference.engine import defaults_for, torch_alloc  # noqa: E402
from pvdesk.models import pick_device, resolve_bundle  # noqa: E402
from pvdesk.slides import open_source  # noqa: E402
from pvdesk.tiling import TileGrid, make_grid  # noqa: E402

BUNDLES = ("demo-clip-rn50", "demo-resnet50")


def sync(device: str) -> None:
    torch = heavy.torch()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    elif device.startswith("mps"):
        torch.mps.synchronize()


def first_tiles(grid: TileGrid, n: int) -> TileGrid:
    return TileGrid(grid.tiles[:n], grid.out_size, grid.side, grid.stride, grid.level,
                    grid.units, grid.tile_um, grid.mpp, grid.total_positions, grid.mask)


def device_batch(src, grid: TileGrid, n: int, device: str):
    """``n`` real tiles (uint8, N x 3 x H x W, channels_last as the readers give them) on the
    device, read once through a BatchReader."""
    torch = heavy.torch()
    reader = BatchReader(src, first_tiles(grid, min(n, len(grid.tiles))), batch_size=n,
                         workers=1, alloc=torch_alloc, native=not device.startswith("cpu"))
    x = next(iter(reader)).tensor
    reps = -(-n // x.shape[0])
    return torch.cat([x] * reps)[:n].to(device)


def model_only(clf, x, batches: int) -> float:
    """Tiles/s of ``batches`` forward passes on a device-resident batch, waited for at the end."""
    clf.forward_device(x)  # warm-up (cuDNN picks its algorithms for this shape)
    sync(clf.device)
    t = time.perf_counter()
    for _ in range(batches):
        out = clf.forward_device(x)
    out[0].cpu()
    sync(clf.device)
    return batches * x.shape[0] / (time.perf_counter() - t)


def end_to_end(src, grid, classifiers: dict, batch, workers) -> float:
    engine = InferenceEngine(src, grid, classifiers, batch_size=batch, workers=workers,
                             embeddings=False)
    t = time.perf_counter()
    n = sum(len(b) for b in engine.run())
    return n / (time.perf_counter() - t)


def readers_only(src, grid, batch: int, workers: int, pin: bool, native: bool) -> float:
    import functools

    alloc = functools.partial(torch_alloc, pin=pin)
    t = time.perf_counter()
    n = sum(len(b.tiles) for b in BatchReader(src, grid, batch, workers, prefetch=2,
                                              alloc=alloc, native=native))
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tiles", type=int, default=None,
                    help="tiles end to end (default: all tissue tiles on a GPU, 32 on a CPU)")
    ap.add_argument("--slide", default=None, help="large slide to reuse (default: build one)")
    ap.add_argument("--size", type=int, default=None,
                    help="side of the slide to build (default 40960 on a GPU, 8192 on a CPU)")
    ap.add_argument("--batch", type=int, default=None, help="default: the engine's for the device")
    ap.add_argument("--workers", type=int, default=None, help="default: the engine's")
    ap.add_argument("--model-batches", type=int, default=None,
                    help="batches timed model-only (default 20 on a GPU, 1 on a CPU)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="end-to-end passes, the best printed (default 2 on a GPU, 1 on a CPU)")
    args = ap.parse_args()
    torch = heavy.torch()
    device = pick_device(args.device)
    gpu = not device.startswith("cpu")
    auto = defaults_for(device)
    batch = args.batch or auto["batch_size"]
    workers = args.workers or auto["workers"]
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    print(f"device {device} ({name}), torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"batch {batch}, {workers} reader threads, pipeline {auto['pipeline']}, "
          f"resize on device {auto['resize_on_device']}")
    tmp = tempfile.TemporaryDirectory()
    if args.slide:
        slide = Path(args.slide)
    else:
        size = args.size or (40960 if gpu else 8192)
        t = time.perf_counter()
        slide = make_large_slide(Path(tmp.name) / "large.tiff", size)
        print(f"built a {size} px slide in {time.perf_counter() - t:.0f} s")
    src = open_source(slide)
    full = make_grid(src, 112.0, 224)
    n = min(len(full.tiles), args.tiles or (len(full.tiles) if gpu else 32))
    repeats = args.repeats or (2 if gpu else 1)
    grid = first_tiles(full, n)
    print(f"slide {src.dimensions[0]} x {src.dimensions[1]} px, {len(full.tiles)} tissue tiles; "
          f"end to end over the first {n}")
    rate = max(readers_only(src, grid, batch, workers, device.startswith("cuda"),
                            auto["resize_on_device"]) for _ in range(repeats))
    print(f"readers alone ({workers} threads): {rate:.0f} tiles/s")
    x = device_batch(src, full, batch, device)
    model_batches = args.model_batches or (20 if gpu else 1)
    loaded = {}
    for bname in BUNDLES:
        t = time.perf_counter()
        clf = resolve_bundle(bname).load(device, precision="auto")
        built = time.perf_counter() - t
        loaded[bname] = clf
        end_to_end(src, first_tiles(grid, min(n, 2 * batch)), {bname: clf}, batch, workers)
        model = model_only(clf, x, model_batches)
        e2e = max(end_to_end(src, grid, {bname: clf}, batch, workers)
                  for _ in range(repeats))
        print(f"{bname} ({clf.effective_precision}, built in {built:.1f} s): model-only "
              f"{model:.0f} tiles/s | end-to-end {e2e:.0f} tiles/s = {e2e / model:.2f}x "
              f"model-only")
    both = max(end_to_end(src, grid, loaded, batch, workers) for _ in range(repeats))
    print(f"both bundles in one pass, end to end: {both:.0f} tiles/s")
    if device.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    src.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
