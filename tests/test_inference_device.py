"""The engine's path to the device, exercised on the CPU through the same functions a GPU run
uses: uint8 tiles normalised (and resized) on the device, NHWC buffers seen as channels_last,
torch-allocated reader buffers, native-size reads resized by the model's device, batches
pipelined (queued before the previous one is waited for), and the device defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_fakes import FakeClassifier, FlakySource, small_slide
from models_support import tiles
from slide_factory import paint, write_pyramid

from pvdesk.inference import BatchReader, InferenceEngine, tile_pixels
from pvdesk.inference import engine as engine_mod
from pvdesk.inference import reader as reader_mod
from pvdesk.models import Bundle, resolve_bundle
from pvdesk.models.classifier import TileClassifier
from pvdesk.models.preprocess import normalisation, to_model_input
from pvdesk.paths import sample_slide
from pvdesk.slides import open_source
from pvdesk.tiling import TileGrid, make_grid

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def old_prepare(batch: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """TileClassifier.prepare before the device path (float resize, subtract, divide)."""
    x = batch.float()
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                            antialias=True, align_corners=False)
    m = torch.tensor(mean).view(1, 3, 1, 1) * 255.0
    s = torch.tensor(std).view(1, 3, 1, 1) * 255.0
    return (x - m) / s


@pytest.fixture(scope="module")
def real_tiles():
    """Twelve real tissue tiles of the CMU sample at 300 px, (N, 3, H, W) uint8."""
    with open_source(sample_slide()) as src:
        grid = make_grid(src, 150.0, 300)
        return torch.from_numpy(np.stack([tile_pixels(src, t, grid) for t in grid.tiles[:12]]))


@pytest.mark.parametrize("mean,std", [(CLIP_MEAN, CLIP_STD), ((0.485, 0.456, 0.406),
                                                              (0.229, 0.224, 0.225))])
def test_normalise_on_device_matches_the_old_path(real_tiles, mean, std):
    scale, shift = normalisation(mean, std)
    x = real_tiles
    new = to_model_input(x, 300, scale, shift)
    torch.testing.assert_close(new, old_prepare(x, 300, mean, std), atol=2e-6, rtol=0)
    assert x.dtype == torch.uint8  # the input is never modified
    # The reader's NHWC buffer seen as (N, 3, H, W): same numbers, channels_last out.
    nhwc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    cl = to_model_input(nhwc, 300, scale, shift, channels_last=True)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cl, new, atol=0, rtol=0)
    bf = to_model_input(x, 300, scale, shift, dtype=torch.bfloat16)
    assert bf.dtype == torch.bfloat16
    torch.testing.assert_close(bf.float(), new, atol=0.02, rtol=0.01)


@pytest.mark.parametrize("size", [224, 160, 336])
def test_resize_on_device_matches_the_old_path(real_tiles, size):
    """Shrinking 300 px tiles (or enlarging them): the CPU's uint8 kernel (which rounds to
    whole levels, as PIL does) and the float kernel a GPU runs agree with the old path."""
    scale, shift = normalisation(CLIP_MEAN, CLIP_STD)
    ref = old_prepare(real_tiles, size, CLIP_MEAN, CLIP_STD)
    cpu = to_model_input(real_tiles, size, scale, shift)  # uint8 kernel
    gpu_like = to_model_input(real_tiles.float(), size, scale, shift)  # float kernel
    torch.testing.assert_close(gpu_like, ref, atol=2e-5, rtol=0)
    one_level = 1.0 / (255 * min(CLIP_STD))
    assert (cpu - ref).abs().max() <= 1.01 * one_level
    assert (cpu - ref).abs().mean() <= 0.3 * one_level
    assert cpu.shape == (12, 3, size, size)


@pytest.fixture(scope="module")
def tiny():
    """A TileClassifier on a tiny random CNN: the real class, fast enough for many runs."""
    m = dict(resolve_bundle("demo-resnet50").manifest, name="tiny-cnn", input_size=24)
    bundle = Bundle(m)
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
            self.fc = torch.nn.Linear(16, len(bundle.classes))

        def forward(self, x):
            h = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return self.fc(h) * 4, torch.nn.functional.normalize(h, dim=1)

    return TileClassifier(bundle, Net(), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    path = small_slide(tmp_path_factory.mktemp("dev"))
    src = open_source(path)
    yield src
    src.close()


def test_forward_device_is_predict_without_the_wait(tiny):
    x = tiles(6, size=40)
    probs, emb = tiny.forward_device(x)
    out = tiny.predict(x)
    torch.testing.assert_close(probs, out.probs, atol=0, rtol=0)
    torch.testing.assert_close(emb, out.embeddings, atol=0, rtol=0)
    torch.testing.assert_close(probs.sum(1), torch.ones(6), atol=1e-5, rtol=0)


def _probs(batches, key):
    return np.concatenate([b.probs[key] for b in batches])


def test_pipelined_runs_give_the_same_results_in_order(slide, tiny):
    grid = make_grid(slide, tile_um=32, out_size=32)
    assert len(grid) > 40
    ref = InferenceEngine(slide, grid, {"t": tiny}, batch_size=8, workers=1, pipeline=1,
                          resize_on_device=False).run_all()
    ref_p = _probs(ref, "t")
    for batch, workers, pipeline in [(8, 2, 2), (5, 3, 3), (64, 2, 2)]:
        seen = []
        out = InferenceEngine(slide, grid, {"t": tiny, "f": FakeClassifier()}, batch_size=batch,
                              workers=workers, pipeline=pipeline, resize_on_device=False,
                              progress=seen.append).run_all()
        assert [t.index for b in out for t in b.tiles] == [t.index for t in grid.tiles]
        np.testing.assert_allclose(_probs(out, "t"), ref_p, atol=1e-6)
        assert np.isfinite(np.concatenate([b.embeddings["t"] for b in out])).all()
        assert seen[-1].done == len(grid) and [p.done for p in seen] == sorted(
            p.done for p in seen)


def test_pipelined_run_with_unreadable_tiles(slide, tiny):
    grid = make_grid(slide, tile_um=32, out_size=32)
    bad = {grid.tiles[0].index, grid.tiles[9].index, grid.tiles[-1].index}
    ref = _probs(InferenceEngine(slide, grid, {"t": tiny}, batch_size=4, workers=2,
                                 pipeline=1).run_all(), "t")
    out = InferenceEngine(FlakySource(slide, bad), grid, {"t": tiny}, batch_size=4, workers=2,
                          pipeline=2).run_all()
    probs = _probs(out, "t")
    rows = np.array([t.index in bad for t in grid.tiles])
    assert np.isnan(probs[rows]).all()
    np.testing.assert_allclose(probs[~rows], ref[~rows], atol=1e-6)
    assert sum(len(b.errors) for b in out) == 3


def test_pipelined_run_cancels_and_joins_its_readers(slide, tiny):
    grid = make_grid(slide, tile_um=32, out_size=32)
    engine = InferenceEngine(FlakySource(slide, delay=0.002), grid, {"t": tiny}, batch_size=4,
                             workers=2, pipeline=2)
    got = []
    for b in engine.run():
        got.append(b)
        if len(got) == 2:
            engine.cancel()
    assert len(got) == 2 and engine.cancelled and not engine.finished
    assert engine.reader_threads == []


def test_reader_buffers_from_torch_are_the_batch_tensor(slide):
    grid = make_grid(slide, tile_um=32, out_size=32)
    reader = BatchReader(slide, grid, batch_size=7, workers=2, alloc=engine_mod.torch_alloc)
    for read in reader:
        t = read.tensor
        assert t.shape == (len(read.tiles), 3, 32, 32) and t.dtype == torch.uint8
        assert t.is_contiguous(memory_format=torch.channels_last)
        assert np.shares_memory(t.numpy(), read.pixels)
        np.testing.assert_array_equal(read.pixels[0], tile_pixels(slide, read.tiles[0], grid))


def test_native_reads_are_resized_on_the_device(slide, tiny, tmp_path):
    """Tiles read at their level's size (36 px for a 24 px model here: level 0 of a
    0.5 um/px slide, 18 um tiles) and resized by the model agree with PIL-resized ones."""
    grid = make_grid(slide, tile_um=18, out_size=24)
    assert reader_mod.native_size(slide, grid) == 36
    assert BatchReader(slide, grid, native=True).tile_size == 36
    assert BatchReader(slide, grid).tile_size == 24
    one_level = write_pyramid(tmp_path / "flat.tif", paint(400, 300, [(50, 50, 350, 250)]),
                              levels=1, mpp=0.5)
    with open_source(one_level) as flat:  # 80 px > 2 x 24: PIL resizes in the readers
        assert reader_mod.native_size(flat, make_grid(flat, tile_um=40, out_size=24)) is None
    pil = InferenceEngine(slide, grid, {"t": tiny}, resize_on_device=False).run_all()
    dev = InferenceEngine(slide, grid, {"t": tiny}, resize_on_device=True).run_all()
    np.testing.assert_allclose(_probs(dev, "t"), _probs(pil, "t"), atol=0.02)


@pytest.mark.slow
def test_native_reads_with_demo_resnet50(tmp_path, monkeypatch):
    """The real demo network: 300 px native reads resized to 224 on the device give the same
    arg-max as PIL-resized tiles and close probabilities."""
    monkeypatch.setenv("PVDESK_HOME", str(tmp_path))
    clf = resolve_bundle("demo-resnet50").load("cpu", precision="fp32")
    with open_source(sample_slide()) as src:
        full = make_grid(src, 150.0, 224)
        grid = TileGrid(full.tiles[:8], full.out_size, full.side, full.stride, full.level,
                        mask=full.mask)
        assert reader_mod.native_size(src, grid) == 301
        runs = [_probs(InferenceEngine(src, grid, {"r": clf}, batch_size=8,
                                       resize_on_device=native).run_all(), "r")
                for native in (False, True)]
    np.testing.assert_allclose(runs[1], runs[0], atol=0.02)
    assert (runs[1].argmax(1) == runs[0].argmax(1)).mean() >= 0.85


def test_device_defaults(monkeypatch):
    cpu = engine_mod.defaults_for("cpu")
    assert cpu == {"batch_size": 32, "workers": 2, "prefetch": None, "pipeline": 1,
                   "resize_on_device": False}
    for cores, want in [(64, 16), (16, 15), (4, 3), (1, 2), (None, 2)]:
        monkeypatch.setattr(reader_mod.os, "cpu_count", lambda c=cores: c)
        gpu = engine_mod.defaults_for("cuda:0")
        assert gpu["workers"] == want
        assert gpu["pipeline"] == 2 and gpu["resize_on_device"] and gpu["batch_size"] == 128
    assert engine_mod.defaults_for("mps")["pipeline"] == 1

    class On:
        def __init__(self, device):
            self.device = device

    assert engine_mod.device_kind({"a": On("cpu"), "b": On("cuda:1")}) == "cuda:1"
    assert engine_mod.device_kind({"a": FakeClassifier()}) == "cpu"
    e = InferenceEngine(None, TileGrid([], 32), {"a": FakeClassifier()})
    assert (e.batch_size, e.workers, e.pipeline, e.resize_on_device) == (32, 2, 1, False)
    e = InferenceEngine(None, TileGrid([], 32), {"a": FakeClassifier()}, batch_size=5,
                        workers=3)
    assert (e.batch_size, e.workers) == (5, 3)
