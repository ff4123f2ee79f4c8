"""PatchCamelyon as a data source: the official splits kept, patches read lazily from the
HDF5 files, and `pvdesk-train train --backbone timm:... --data PCAM_DIR` training and
evaluating a linear head on a timm encoder; broken PCam folders are one line."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from backbone_support import TIMM_ARCH, pcam_folder, timm_weights

from training.cli import main
from training.data import load_dataset
from training.data.source import SampleReader


@pytest.fixture(scope="session")
def pcam(tmp_path_factory):
    return pcam_folder(tmp_path_factory.mktemp("pcam"))


@pytest.fixture(scope="session")
def vits(tmp_path_factory):
    return timm_weights(tmp_path_factory.mktemp("vits"))


def test_pcam_splits_labels_and_lazy_patches(pcam):
    ds = load_dataset(pcam)
    assert ds.kind == "pcam" and ds.classes == ["normal", "tumor"]
    counts = ds.counts()
    assert {k: sum(v.values()) for k, v in counts.items()} == {"train": 24, "val": 8, "test": 8}
    assert counts["train"] == {"normal": 12, "tumor": 12}
    s = ds.split("val")[3]
    assert s.index == 3 and s.label == "tumor" and s.key.endswith("_valid_x.h5#3")
    with h5py.File(s.path) as f:
        want = f["x"][3]
    reader = SampleReader()
    try:
        got = reader.array(s, 96)
    finally:
        reader.close()
    assert np.array_equal(got.transpose(1, 2, 0), want)
    assert len({x.key for x in ds.samples}) == len(ds)


def test_train_timm_linear_head_on_pcam_then_evaluate(pcam, vits, tmp_path, monkeypatch, capsys,
                                                      pvdesk_home):
    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    out = tmp_path / "bundle"
    rc = main(["train", "--backbone", f"timm:{TIMM_ARCH}", "--weights", str(vits),
               "--data", str(pcam), "--out", str(out), "--progress", "none", "--bootstrap",
               "20", "--threads", "2", "--workers", "1"])
    assert rc == 0, capsys.readouterr().err
    m = json.loads((out / "manifest.json").read_text())
    assert m["kind"] == "clip-linear" and m["classes"] == ["normal", "tumor"]
    assert m["backbone"]["source"] == "timm" and m["backbone"]["path"] == str(vits)
    assert m["mean"] == [0.5, 0.5, 0.5] and m["tile_um"] == pytest.approx(93.3)
    assert m["provenance"]["eval_split"] == "test" and m["provenance"]["metrics"]["n"] == 8
    assert m["trained"] is True
    part = m["lineage"]["parts"][0]
    assert part["weights"][0]["size"] == vits.stat().st_size
    assert "timm" in m["provenance"]["software"]
    # the tumour patches are redder: a linear head on the frozen encoder separates them
    assert m["provenance"]["metrics"]["accuracy"] >= 0.75
    rc = main(["evaluate", "--model", str(out), "--data", str(pcam), "--split", "test",
               "--out", str(tmp_path / "ev"), "--progress", "none", "--bootstrap", "20"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())["metrics"]
    assert metrics["n"] == 8 and metrics["accuracy"] == pytest.approx(
        m["provenance"]["metrics"]["accuracy"])


def test_broken_pcam_folders_are_one_line(pcam, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(pcam, bad)
    (bad / "camelyonpatch_level_2_split_test_y.h5").unlink()
    assert main(["split", "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "split_test_y.h5: missing" in err
    (bad / "camelyonpatch_level_2_split_test_x.h5").rename(
        bad / "camelyonpatch_level_2_split_test_x.h5.gz")
    (bad / "camelyonpatch_level_2_split_test_y.h5.gz").write_bytes(b"\x1f\x8b")
    assert main(["split", "--data", str(bad)]) == 2
    assert "gunzip" in capsys.readouterr().err
    gz = bad / "camelyonpatch_level_2_split_test_x.h5.gz"
    gz.unlink()
    (bad / "camelyonpatch_level_2_split_test_y.h5.gz").unlink()
    with h5py.File(bad / "camelyonpatch_level_2_split_valid_x.h5", "w") as f:
        f.create_dataset("x", data=np.zeros((8, 32, 32, 3), np.uint8))
    assert main(["split", "--data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected (N, 96, 96, 3)" in err
    (bad / "camelyonpatch_level_2_split_valid_x.h5").write_bytes(b"not hdf5 at all")
    assert main(["split", "--data", str(bad)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
