"""The engine with a real bundle (demo-resnet50, random weights): same outputs whatever the
batch size and reader thread count, and the probabilities are well-formed."""

from __future__ import annotations

import numpy as np
import pytest

from pvdesk.inference import InferenceEngine
from pvdesk.paths import sample_slide
from pvdesk.slides import open_source
from pvdesk.tiling import TileGrid, make_grid


@pytest.mark.slow
def test_demo_resnet_agrees_across_batch_sizes_and_threads():
    from pvdesk.models import resolve_bundle

    bundle = resolve_bundle("demo-resnet50")
    clf = bundle.load(device="cpu", precision="auto")
    with open_source(sample_slide()) as src:
        full = make_grid(src, bundle.tile_um, bundle.input_size)
        grid = TileGrid(full.tiles[:12], full.out_size, full.side, full.stride, full.level,
                        mask=full.mask)
        runs = []
        for batch, workers in [(12, 1), (5, 3)]:
            out = InferenceEngine(src, grid, {"r": clf}, batch_size=batch,
                                  workers=workers).run_all()
            runs.append(np.concatenate([b.probs["r"] for b in out]))
    a, b = runs
    assert a.shape == (12, len(bundle.classes))
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(a, b, atol=5e-3)
