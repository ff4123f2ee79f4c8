"""`evaluate` never scores training images and calls it "test"; every figure can be
recomputed from predictions.csv and carries its denominator and interval (or why not).

The two leaks of the issue, reproduced on a generated BreakHis-named tree:
- a split manifest other than the bundle's own: its "test" images were the bundle's
  training images, and the report said test accuracy;
- ``--magnification 40``: the bundle's split.csv no longer matched every image, so
  evaluate fell back to all images (training ones included) and recorded an evaluation.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from training_fixtures import colour_dataset

from pvdesk.models import resolve_bundle
from training.cli import main
from training.data import read_manifest


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A clip-linear head on demo-clip-rn50, trained on 2 classes x 8 patients x 2 images
    (magnifications 40 and 100); its split.csv says which images it saw."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("honest")
    mp.setenv("PVDESK_HOME", str(root / "home"))
    mp.setenv("PVDESK_OFFLINE", "1")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = colour_dataset(root / "data", classes=2, patients=8, per_patient=2)
    out = root / "bundle"
    rc = main(["train", "--data", str(data), "--head", "clip-linear", "--backbone",
               "demo-clip-rn50", "--out", str(out), "--progress", "none", "--bootstrap", "20",
               "--workers", "1"])
    assert rc == 0
    yield data, out
    torch.set_num_threads(threads)
    mp.undo()


def _evaluate(*args) -> int:
    return main(["evaluate", "--progress", "none", "--bootstrap", "20", "--workers", "1",
                 *map(str, args)])


def _own(bundle_dir):
    own = read_manifest(bundle_dir / "split.csv")
    return {s.split: {s.path for s in own.split(s.split)} for s in own.samples}


def _scored(folder) -> list[dict]:
    with open(folder / "predictions.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_another_split_manifest_with_training_images_is_refused(trained, tmp_path, capsys):
    data, bundle = trained
    own = read_manifest(bundle / "split.csv")
    # another manifest of the same images whose "test" split holds the bundle's training
    # and test images (its own validation images stay validation)
    swap = {"train": "test", "test": "test", "val": "val"}
    other = tmp_path / "other-split.csv"
    with open(bundle / "split.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["path"] = str((bundle / r["path"]).resolve()) if not r["path"].startswith("/") \
            else r["path"]
        r["split"] = swap[r["split"]]
    with open(other, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    n_test = sum(r["split"] == "test" for r in rows)
    n_seen = len(own.split("train"))
    assert n_test == n_seen + len(own.split("test")) and n_seen > 0

    rc = _evaluate("--model", bundle, "--data", other, "--out", tmp_path / "r1")
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "r1" / "metrics.json").exists()
    assert f"{n_seen} of {n_test} images are not held out" in err
    assert f"{n_seen} in its training split" in err and "--exclude-seen" in err

    # --exclude-seen: the training images are left out; what is scored is held out
    rc = _evaluate("--model", bundle, "--data", other, "--out", tmp_path / "r2",
                   "--exclude-seen")
    capsys.readouterr()
    assert rc == 0
    scored = {r["image"] for r in _scored(tmp_path / "r2")}
    assert scored == {s.path for s in own.split("test")}
    saved = json.loads((tmp_path / "r2" / "metrics.json").read_text())
    assert saved["metrics"]["n"] == len(own.split("test"))
    assert not saved["title"].startswith("CONTAMINATED")
    assert saved["context"]["held-out check"].endswith("left out (--exclude-seen)")

    # --allow-contaminated: scored, and marked so everywhere; never the bundle's metrics
    before = resolve_bundle(bundle).provenance["metrics"]
    rc = _evaluate("--model", bundle, "--data", other, "--out", tmp_path / "r3",
                   "--allow-contaminated")
    capsys.readouterr()
    assert rc == 0
    saved = json.loads((tmp_path / "r3" / "metrics.json").read_text())
    assert saved["title"].startswith("CONTAMINATED — ")
    assert saved["context"]["held-out check"].startswith("CONTAMINATED:")
    assert (tmp_path / "r3" / "report.md").read_text().startswith("# CONTAMINATED — ")
    b = resolve_bundle(bundle)
    assert b.provenance["metrics"] == before
    entries = list(b.provenance["evaluations"].values())
    assert any(e.get("contaminated") for e in entries)
    assert "CONTAMINATED" not in b.evaluation  # the recorded evaluation stays the clean one


def test_its_own_train_split_is_scored_only_as_what_it_is(trained, tmp_path, capsys):
    _, bundle = trained
    rc = _evaluate("--model", bundle, "--data", bundle / "split.csv", "--split", "train",
                   "--out", tmp_path / "tr")
    capsys.readouterr()
    assert rc == 0  # asked for by name: scored, never called held out
    saved = json.loads((tmp_path / "tr" / "metrics.json").read_text())
    assert saved["title"].startswith("CONTAMINATED — ")
    assert "training split (images it was trained on" in saved["title"]
    assert saved["context"]["held-out check"].endswith("not a held-out estimate")
    before = resolve_bundle(bundle).provenance["metrics"]
    assert before["split"] == "test"  # the bundle's own metrics are untouched


def test_magnification_filter_keeps_the_bundles_own_test_split(trained, tmp_path, capsys):
    data, bundle = trained
    own = _own(bundle)
    rc = _evaluate("--model", bundle, "--data", data, "--magnification", "40",
                   "--out", tmp_path / "m40")
    capsys.readouterr()
    assert rc == 0
    scored = {r["image"] for r in _scored(tmp_path / "m40")}
    assert scored and scored <= own["test"]  # before: all 40X images, training ones too
    assert all("-40-" in p for p in scored)
    saved = json.loads((tmp_path / "m40" / "metrics.json").read_text())
    assert saved["context"]["split"].startswith("test (")


def test_a_folder_without_splits_is_reported_as_all_not_test(trained, tmp_path, capsys):
    data, _ = trained
    rc = _evaluate("--model", "demo-clip-rn50", "--data", data, "--out", tmp_path / "zs")
    capsys.readouterr()
    assert rc == 0
    saved = json.loads((tmp_path / "zs" / "metrics.json").read_text())
    assert "all split" in saved["title"] and "test" not in saved["title"]
    assert saved["title"].startswith("UNTRAINED — ")
    assert saved["context"]["held-out check"].startswith("not checked")


def test_every_figure_is_recomputed_from_predictions_csv(trained, tmp_path, capsys):
    """An 8-class bundle on 2-class data: macro averages run over all 8 classes, so the
    macro row is the mean of the 8 per-class rows (before: over the 2 present)."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_score,
        recall_score,
    )

    data, _ = trained
    rc = _evaluate("--model", "demo-clip-rn50", "--data", data, "--split", "all",
                   "--out", tmp_path / "all")
    capsys.readouterr()
    assert rc == 0
    m = json.loads((tmp_path / "all" / "metrics.json").read_text())["metrics"]
    rows = _scored(tmp_path / "all")
    classes = m["classes"]
    assert len(classes) == 8 and len(rows) == m["n"] == 32
    y = [classes.index(r["true"]) for r in rows]
    p = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    pred = p.argmax(1)
    assert [classes[i] for i in pred] == [r["predicted"] for r in rows]
    labels = list(range(8))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["correct"] == int((pred == np.array(y)).sum())
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    for name, fn in (("f1", f1_score), ("precision", precision_score),
                     ("recall", recall_score)):
        for avg in ("macro", "weighted"):
            assert m[f"{avg}_{name}"] == pytest.approx(
                fn(y, pred, labels=labels, average=avg, zero_division=0)), (name, avg)
    per = [m["per_class"][c]["f1"] for c in classes]
    assert m["macro_f1"] == pytest.approx(np.mean(per))
    report = (tmp_path / "all" / "report.md").read_text()
    assert f"({m['correct']} of 32 images" in report
    assert "macro: the unweighted mean over the bundle's 8 classes" in report


def test_few_patients_give_no_interval_and_say_why(trained):
    _, bundle = trained
    m = json.loads((bundle / "metrics.json").read_text())["metrics"]
    patients = m["bootstrap"]["groups"]
    assert m["bootstrap"]["unit"] == "patient" and patients < 5
    assert m["bootstrap"]["ci95"] == {}
    report = (bundle / "report.md").read_text()
    assert f"no interval: {patients} patient" in report and "95% CI" not in report
    assert (bundle / "predictions.csv").is_file()


def test_no_test_split_titles_the_report_validation(tmp_path, capsys, monkeypatch, pvdesk_home):
    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    data = colour_dataset(tmp_path / "data", classes=2, patients=3, per_patient=1)
    out = tmp_path / "b"
    rc = main(["train", "--data", str(data), "--head", "clip-linear", "--backbone",
               "demo-clip-rn50", "--out", str(out), "--fractions", "0.7,0.3,0",
               "--progress", "none", "--bootstrap", "0", "--workers", "1"])
    capsys.readouterr()
    assert rc == 0
    title = (out / "report.md").read_text().splitlines()[0]
    assert "validation split (no test split" in title and "optimistic" in title


def test_loss_curves_compare_like_with_like():
    """Train loss is plain cross-entropy, as validation loss is; the label-smoothed loss
    that is optimised is recorded beside it."""
    from training.heads import MlpConfig, train_mlp

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 16)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    X[:, 0] *= 5
    cfg = MlpConfig(hidden=32, epochs=30, label_smoothing=0.4, batch_size=16, dropout=0.0)
    _, history, _ = train_mlp(X[:60], y[:60], X[60:], y[60:], 2, cfg, 0)
    last = history[-1]
    # smoothing 0.4 keeps the optimised loss above ~0.5; plain cross-entropy falls far below
    assert last["train_loss_smoothed"] > 0.45 > last["train_loss"]
    assert abs(last["train_loss"] - last["val_loss"]) < 0.3


# -- splits that depend on their seed, and cross-validation ------------------------------

def _breakhis_like(seed: int = 42):
    """41 patients in 8 classes (3 phyllodes), 4-30 images each, as BreakHis varies."""
    import random

    from training.data.samples import Dataset, Sample

    rng = random.Random(seed)
    per_class = {"adenosis": 3, "fibroadenoma": 6, "tubular_adenoma": 3, "phyllodes_tumor": 3,
                 "ductal_carcinoma": 14, "lobular_carcinoma": 4, "mucinous_carcinoma": 5,
                 "papillary_carcinoma": 3}
    samples = [Sample(f"/x/{c}/{p}/{i}.png", c, f"{c}-{p}")
               for c, n in per_class.items() for p in range(n)
               for i in range(rng.randint(4, 30))]
    return Dataset(samples, "/x", "breakhis")


def test_the_seed_decides_the_split_not_patient_size():
    """Before: patients sorted by image count, the smallest always to test: 6 distinct test
    sets over 10 seeds (8 over 50), test patients 9.4 images against 21.6 in train."""
    from collections import Counter

    from training.data import check_disjoint, split_dataset

    ds = _breakhis_like()
    size = Counter(s.patient for s in ds.samples)
    tests, test_sizes, train_sizes = set(), [], []
    for seed in range(10):
        sp = split_dataset(ds, seed=seed)
        assert check_disjoint(sp) == []
        test = {s.patient for s in sp.split("test")}
        tests.add(frozenset(test))
        test_sizes += [size[p] for p in test]
        train_sizes += [size[p] for p in {s.patient for s in sp.split("train")}]
        assert {s.label for s in sp.split("test")} == set(ds.classes)  # stratified
    assert len(tests) >= 8
    assert np.mean(test_sizes) == pytest.approx(np.mean(train_sizes), rel=0.35)


def test_folds_test_every_patient_once(tmp_path, capsys, monkeypatch, pvdesk_home):
    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    data = colour_dataset(tmp_path / "data", classes=2, patients=6, per_patient=1)
    out = tmp_path / "cv-bundle"
    rc = main(["train", "--data", str(data), "--head", "clip-linear", "--backbone",
               "demo-clip-rn50", "--out", str(out), "--folds", "3", "--progress", "none",
               "--bootstrap", "20", "--workers", "1"])
    capsys.readouterr()
    assert rc == 0
    pooled = _scored(out / "cv" / "pooled")
    images = sorted(r["image"] for r in pooled)
    assert len(images) == 12 and len(set(images)) == 12  # every image tested exactly once
    folds = [_scored(out / "cv" / f"fold-{i}") for i in (1, 2, 3)]
    assert sorted(r["image"] for f in folds for r in f) == images
    for i, f in enumerate(folds, start=1):
        m = json.loads((out / "cv" / f"fold-{i}" / "metrics.json").read_text())
        assert m["metrics"]["n"] == len(f) and "fold" in m["title"]
    cv = resolve_bundle(out).provenance["cross_validation"]
    assert cv["folds"] == 3 and cv["pooled"]["n"] == 12 and len(cv["per_fold"]) == 3
    report = (out / "report.md").read_text()
    assert "- cross-validation: 3 folds, pooled accuracy" in report


def test_fold_dataset_holds_each_patient_out_once():
    from training.data import check_disjoint, fold_dataset

    ds = _breakhis_like()
    folds = fold_dataset(ds, 5, seed=3)
    tested: list[str] = []
    for fold in folds:
        assert check_disjoint(fold) == []  # test patients are in no other split of the fold
        assert fold.split("train") and fold.split("val") and fold.split("test")
        tested += sorted({s.patient for s in fold.split("test")})
    assert sorted(tested) == sorted({s.patient for s in ds.samples})
    # phyllodes has 3 patients: two of the five folds test none, and say so
    assert sum(any("phyllodes_tumor" in w for w in f.warnings) for f in folds) == 2
