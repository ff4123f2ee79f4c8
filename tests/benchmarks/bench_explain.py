"""Grad-CAM seconds per tile (pvdesk.explain) for the demo bundles on this machine's CPU
(or --device), warm: the model is loaded and one tile explained before timing.

    .venv/bin/python tests/benchmarks/bench_explain.py [--model demo-resnet50 ...] [--n 5]

Target (issue "Why this tile"): <= 1.5 s per tile for ResNet50 and CLIP RN50 on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from pvdesk.explain import Explainer
from pvdesk.models import resolve_bundle
from pvdesk.paths import sample_slide
from pvdesk.slides import open_source


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    import torch

    with open_source(sample_slide()) as src:
        tiles = [src.read_region((x, y), 0, (224, 224)).convert("RGB")
                 for x, y in ((896, 224), (1120, 896), (1344, 1568), (672, 2240), (896, 672))]
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    for name in a.model or ["demo-resnet50", "demo-clip-rn50"]:
        t = time.perf_counter()
        ex = Explainer(resolve_bundle(name), device=a.device)
        load = time.perf_counter() - t
        ex.explain(tiles[0])  # warm-up
        times = [ex.explain(tiles[i % len(tiles)]).seconds for i in range(a.n)]
        x = ex.clf.prepare(torch.from_numpy(
            __import__("numpy").asarray(tiles[0]).transpose(2, 0, 1).copy())[None]).float()
        fwd = []
        for _ in range(a.n):
            t = time.perf_counter()
            with torch.no_grad():
                ex.model(x)
            fwd.append(time.perf_counter() - t)
        print(f"{name}: {statistics.median(times):.2f} s per tile median, min {min(times):.2f}, "
              f"max {max(times):.2f} ({a.n} tiles, {ex.layer_name}); a plain forward pass "
              f"{statistics.median(fwd):.2f} s median; model load {load:.1f} s")


if __name__ == "__main__":
    main()
