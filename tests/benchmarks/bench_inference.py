"""Inference benchmark: model-only throughput (naive fp32 vs optimised) and end-to-end.

    nice python tests/benchmarks/bench_inference.py [--slide PATH] [--model-tiles 64]
        [--e2e-tiles 192] [--batch 32] [--workers 2] [--device cpu] [--vit]

For demo-resnet50 and demo-clip-rn50 (the real architectures, random weights), in one run:
- naive: fp32, eager, NCHW (contiguous) model-only tiles/s at the batch size;
- optimised: the bundle loaded with precision "auto" (bf16 autocast + channels_last on a
  CPU with native bf16; fp16/bf16 on GPU) model-only tiles/s, the ratio to naive, and the
  largest absolute probability difference to fp32 on the same tiles (real tissue tiles of
  the CMU sample);
- end-to-end: InferenceEngine over tiles of the large synthetic slide (>= 40,000 px square,
  JPEG tiles; built with make_large_slide.py unless --slide names one), reading with
  ``--workers`` threads, and its ratio to optimised model-only;
- with --vit: a random-weight CLIP ViT-L/14 optimised model-only (one batch of --vit-tiles).
Prints numbers; asserts nothing (targets are in the issue, not here).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from make_large_slide import make_large_slide  # noqa: E402

from pvdesk.inference import InferenceEngine, tile_pixels  # noqa: E402
from pvdesk.models import Bundle, pick_device, resolve_bundle  # noqa: E402
from pvdesk.paths import sample_slide  # noqa: E402
from pvdesk.slides import open_source  # noqa: E402
from pvdesk.tiling import TileGrid, make_grid  # noqa: E402


def sample_tiles(n: int):
    """``n`` real tissue tiles (uint8, 3 x 224 x 224) from the CMU sample, repeated as needed."""
    import numpy as np
    import torch

    with open_source(sample_slide()) as src:
        grid = make_grid(src, 112.0, 224, overlap=0.5)
        arr = np.stack([tile_pixels(src, t, grid) for t in grid.tiles[:n]])
    reps = -(-n // len(arr))
    return torch.from_numpy(np.concatenate([arr] * reps)[:n].copy())


def naive_copy(clf):
    """The fp32 classifier made plain eager NCHW (what a first implementation would run)."""
    import torch

    clf.net = clf.net.to(memory_format=torch.contiguous_format)
    clf._channels_last = False
    return clf


def model_pass(clf, x, batch: int) -> tuple[float, object]:
    """(tiles/s of one pass over ``x``, the probabilities)."""
    import torch

    t = time.perf_counter()
    out = [clf.predict(x[i:i + batch]).probs for i in range(0, len(x), batch)]
    return len(x) / (time.perf_counter() - t), torch.cat(out)


def e2e_pass(src, grid, classifiers: dict, batch: int, workers: int) -> float:
    """Tiles/s of one engine run over ``grid`` (reading included)."""
    engine = InferenceEngine(src, grid, classifiers, batch_size=batch, workers=workers)
    t = time.perf_counter()
    n = sum(len(b) for b in engine.run())
    return n / (time.perf_counter() - t)


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def subset_grid(grid: TileGrid, n: int) -> TileGrid:
    """``n`` tiles spread over the whole slide (so reads are not one cached corner)."""
    step = max(1, len(grid.tiles) // n)
    tiles = grid.tiles[::step][:n]
    return TileGrid(tiles, grid.out_size, grid.side, grid.stride, grid.level, grid.units,
                    grid.tile_um, grid.mpp, grid.total_positions, grid.mask)


def vit_bundle() -> Bundle:
    m = resolve_bundle("demo-clip-rn50").manifest
    m = {**m, "name": "bench-clip-vitl14", "description": "benchmark: random ViT-L/14",
         "backbone": {**m["backbone"], "model": "ViT-L-14"}}
    return Bundle(m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slide", default=None, help="large slide to reuse (default: build one)")
    ap.add_argument("--size", type=int, default=40960, help="side of the slide to build")
    ap.add_argument("--model-tiles", type=int, default=64)
    ap.add_argument("--e2e-tiles", type=int, default=192)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats per model")
    ap.add_argument("--vit", action="store_true", help="also ViT-L/14 optimised (slow on CPU)")
    ap.add_argument("--vit-tiles", type=int, default=16, help="tiles in the ViT-L/14 batch")
    args = ap.parse_args()
    import torch

    device = pick_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch}, {args.model_tiles} tiles model-only, {args.e2e_tiles} end-to-end")
    x = sample_tiles(args.model_tiles)
    tmp = tempfile.TemporaryDirectory()
    slide = Path(args.slide) if args.slide else make_large_slide(Path(tmp.name) / "large.tiff",
                                                                 args.size)
    src = open_source(slide)
    t = time.perf_counter()
    grid = make_grid(src, 112.0, 224)
    print(f"slide {slide} {src.dimensions[0]} x {src.dimensions[1]} px: {grid.describe()} "
          f"(grid in {time.perf_counter() - t:.1f} s)")
    sub = subset_grid(grid, args.e2e_tiles)
    optimised = {}
    for name in ("demo-resnet50", "demo-clip-rn50"):
        b = resolve_bundle(name)
        naive_clf = naive_copy(b.load(device, precision="fp32"))
        opt = b.load(device, precision="auto")
        for clf in (naive_clf, opt):
            clf.predict(x[:args.batch])  # warm-up
        e2e_pass(src, subset_grid(grid, args.batch), {name: opt}, args.batch, args.workers)
        # Interleaved repeats: each repeat measures naive, optimised and end-to-end back to
        # back, so a neighbour's load on a shared machine hits all three alike; ratios are
        # the median of the per-repeat ratios, rates the best pass.
        runs = []
        for _ in range(args.repeats):
            n_rate, p32 = model_pass(naive_clf, x, args.batch)
            o_rate, pa = model_pass(opt, x, args.batch)
            e_rate = e2e_pass(src, sub, {name: opt}, args.batch, args.workers)
            runs.append((n_rate, o_rate, e_rate))
        del naive_clf
        diff = (pa - p32).abs().max().item()
        agree = (pa.argmax(1) == p32.argmax(1)).float().mean().item()
        naive, fast, e2e = (max(r[i] for r in runs) for i in range(3))
        speedup = median([r[1] / r[0] for r in runs])
        e2e_ratio = median([r[2] / r[1] for r in runs])
        optimised[name] = opt
        print(f"{name}: naive fp32 {naive:.1f} tiles/s | optimised ({opt.effective_precision}) "
              f"{fast:.1f} tiles/s, {speedup:.2f}x naive | max |dp| {diff:.4f}, arg-max agrees "
              f"{agree:.1%} | end-to-end {e2e:.1f} tiles/s, {e2e_ratio:.2f}x model-only")
    both = max(e2e_pass(src, sub, optimised, args.batch, args.workers)
               for _ in range(args.repeats))
    print(f"both models in one pass, end-to-end: {both:.1f} tiles/s")
    if args.vit:
        t = time.perf_counter()
        vit = vit_bundle().load(device, precision="auto")
        built = time.perf_counter() - t
        n = min(len(x), args.vit_tiles)
        vit.predict(x[:2])  # warm-up
        t = time.perf_counter()
        vit.predict(x[:n])
        rate = n / (time.perf_counter() - t)
        print(f"CLIP ViT-L/14 (random): optimised ({vit.effective_precision}) {rate:.2f} tiles/s "
              f"(one batch of {n}; built in {built:.0f} s)")
    src.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
