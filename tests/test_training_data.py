"""training.data: folder datasets, BreakHis names, patient-disjoint splits, manifests,
review exports (tiles re-read from slides by coordinates), and the split verb."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from slide_factory import breakhis_tree
from training_fixtures import colour_dataset, colour_slide, review_rows

from pvdesk.export.csv import write_rows_csv
from pvdesk.taxonomy import CLASS_NAMES
from training.cli import main
from training.data import (
    check_disjoint,
    data_hash,
    load_dataset,
    read_manifest,
    split_dataset,
    write_manifest,
)
from training.data.source import SampleReader
from training.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "breakhis-sample"


def _patients_by_split(ds):
    out = {}
    for s in ds.samples:
        out.setdefault(s.split, set()).add(s.patient)
    return out


def test_breakhis_tree_gives_class_patient_and_magnification(tmp_path):
    breakhis_tree(tmp_path, per_class=3)
    ds = load_dataset(tmp_path)
    assert ds.kind == "breakhis" and len(ds) == 24 and not ds.has_splits
    assert ds.classes == list(CLASS_NAMES)
    assert ds.patients_known
    s = next(s for s in ds.samples if "SOB_M_DC" in s.path)
    assert s.label == "ductal_carcinoma" and s.patient.startswith("14-") and s.magnification in (40, 100)


def test_breakhis_own_tree_layout(tmp_path):
    """BreaKHis_v1/histology_slides/breast/<group>/SOB/<subtype>/<SOB_..._patient>/<mag>X/"""
    from PIL import Image

    root = tmp_path / "BreaKHis_v1" / "histology_slides" / "breast"
    for group, sub, code, pid in (("benign", "adenosis", "A", "22549AB"),
                                  ("malignant", "ductal_carcinoma", "DC", "2523")):
        for mag in (40, 100):
            d = root / group / "SOB" / sub / f"SOB_{group[0].upper()}_{code}_14-{pid}" / f"{mag}X"
            d.mkdir(parents=True)
            Image.new("RGB", (20, 12)).save(d / f"SOB_{group[0].upper()}_{code}-14-{pid}-{mag}-001.png")
    ds = load_dataset(tmp_path / "BreaKHis_v1")
    assert sorted((s.label, s.patient, s.magnification) for s in ds.samples) == [
        ("adenosis", "14-22549AB", 40), ("adenosis", "14-22549AB", 100),
        ("ductal_carcinoma", "14-2523", 40), ("ductal_carcinoma", "14-2523", 100)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_is_patient_disjoint_and_stratified(tmp_path, seed):
    colour_dataset(tmp_path, classes=5, patients=7, per_patient=3)
    ds = split_dataset(load_dataset(tmp_path), seed=seed)
    assert check_disjoint(ds) == []
    by = _patients_by_split(ds)
    assert not (by["train"] & by["val"]) and not (by["train"] & by["test"]) and not (by["val"] & by["test"])
    counts = ds.counts()
    for split in ("train", "val", "test"):
        assert set(counts[split]) == set(ds.classes)  # every class in every split
    assert sum(counts["train"].values()) > sum(counts["test"].values())
    assert not ds.warnings


def test_too_few_patients_warns_loudly_or_refuses(tmp_path):
    breakhis_tree(tmp_path, per_class=2)  # one patient per image: 2 patients per class
    ds = split_dataset(load_dataset(tmp_path), seed=0)
    assert any("too few patients" in w for w in ds.warnings)
    assert check_disjoint(ds) == []
    assert "val" not in ds.counts()
    with pytest.raises(DataError, match="too few patients.*refused"):
        split_dataset(load_dataset(tmp_path), strict=True)


def test_zero_fraction_split_is_left_empty_without_warning(tmp_path):
    colour_dataset(tmp_path, classes=3, patients=4)
    ds = split_dataset(load_dataset(tmp_path), fractions=(0.75, 0, 0.25), seed=1)
    assert set(ds.counts()) == {"train", "test"} and not ds.warnings
    assert check_disjoint(ds) == []


def test_manifest_round_trip_and_hash(tmp_path):
    colour_dataset(tmp_path / "data", classes=3, patients=3)
    ds = split_dataset(load_dataset(tmp_path / "data"), seed=5)
    path = write_manifest(tmp_path / "data" / "split.csv", ds)
    text = path.read_text()
    assert text.splitlines()[0] == "path,x,y,w,h,mpp,label,patient,magnification,split"
    assert "adenosis/SOB_" in text and str(tmp_path) not in text  # relative where possible
    back = read_manifest(path)
    assert [(s.path, s.label, s.patient, s.split, s.magnification) for s in back.samples] == [
        (s.path, s.label, s.patient, s.split, s.magnification) for s in ds.samples]
    assert data_hash(back.samples) == data_hash(ds.samples)
    assert data_hash(split_dataset(ds, seed=6).samples) != data_hash(ds.samples)
    assert load_dataset(path).kind == "manifest"  # --data accepts the manifest


def test_seed_layout_and_magnification_filter(tmp_path):
    for split in ("train", "val", "test"):
        colour_dataset(tmp_path / split, classes=2, patients=1, per_patient=2,
                       seed=len(split))
    ds = load_dataset(tmp_path)
    assert ds.kind == "seed" and ds.has_splits
    assert {s.split for s in ds.samples} == {"train", "val", "test"}
    only40 = load_dataset(tmp_path, magnification=[40])
    assert {s.magnification for s in only40.samples} == {40} and len(only40) == len(ds) // 2
    with pytest.raises(DataError, match="no images at 400X"):
        load_dataset(tmp_path, magnification=[400])
    binary = load_dataset(tmp_path, task="binary")
    assert set(binary.classes) == {"benign"}


def test_real_breakhis_sample_split():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (BreakHis sample images are not part of the repo)")
    ds = load_dataset(SHARED)
    assert len(ds) == 12 and ds.patients_known and len(ds.classes) == 8
    assert Counter(s.patient for s in ds.samples)["14-25197"] == 4
    mags = {s.magnification for s in ds.samples if s.patient == "14-25197"}
    assert mags == {40, 100, 200, 400}
    for seed in range(5):
        sp = split_dataset(ds, seed=seed)
        assert check_disjoint(sp) == []
        assert any("too few patients" in w for w in sp.warnings)  # 1-2 patients per class
    assert len(load_dataset(SHARED, magnification=[40])) == 9


def test_review_export_becomes_a_dataset_read_from_the_slide(tmp_path):
    slide, tiles = colour_slide(tmp_path / "slide.tif", classes=2, per_class=3)
    rows = review_rows(slide, tiles)
    rows[0]["review_status"] = "unreviewed"
    rows[1]["review_label"] = "uncertain"
    rows[2]["review_label"] = "non_tissue"
    corrected = dict(rows[3], review_status="corrected", review_label="fibroadenoma")
    rows[3]["review_label"] = "adenosis"  # confirmed ... then corrected in another run
    rows.append(corrected)
    csv_path = tmp_path / "clip_predictions.csv"
    write_rows_csv(csv_path, list(CLASS_NAMES), rows)
    ds = load_dataset(csv_path)
    assert ds.kind == "review-csv" and len(ds) == 3  # 6 tiles - unreviewed/uncertain/non-tissue
    assert any("1 unreviewed, 1 uncertain, 1 non_tissue" in n for n in ds.notes)
    by_xy = {s.region[:2]: s for s in ds.samples}
    assert by_xy[(0, 64)].label == "fibroadenoma"  # corrected wins over confirmed
    assert all(s.patient == f"slide:{slide}" for s in ds.samples)
    reader = SampleReader()
    for s in ds.samples:
        px = reader.array(s, 32)
        assert px.shape == (3, 32, 32)
        expected = (220, 60, 60) if s.region[1] == 0 else (60, 200, 60)
        assert np.abs(px.reshape(3, -1).mean(1) - np.array(expected) + 10).max() < 25
    reader.close()
    assert len(load_dataset(csv_path, include_unreviewed=True)) == 4


def test_review_export_with_missing_slide_names_it(tmp_path):
    rows = review_rows(tmp_path / "gone.svs", [(0, 0, 64, 64, "adenosis")])
    csv_path = tmp_path / "clip_predictions.csv"
    write_rows_csv(csv_path, list(CLASS_NAMES), rows)
    with pytest.raises(DataError, match="gone.svs"):
        load_dataset(csv_path)


def test_split_verb_writes_manifest_and_json_lines(tmp_path, capsys):
    colour_dataset(tmp_path / "d", classes=3, patients=4)
    out = tmp_path / "s.csv"
    rc = main(["split", "--data", str(tmp_path / "d"), "--out", str(out), "--progress", "json",
               "--seed", "3"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    events = [json.loads(line) for line in cap.out.splitlines()]
    assert events[0]["event"] in ("note", "start") and events[-1]["event"] == "done"
    assert events[-1]["out"] == str(out)
    ds = read_manifest(out)
    assert len(ds) == 24 and check_disjoint(ds) == []


def test_errors_are_one_line_with_status_2(tmp_path, capsys):
    rc = main(["split", "--data", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "nowhere: no such file or folder" in err
    (tmp_path / "empty").mkdir()
    assert main(["split", "--data", str(tmp_path / "empty")]) == 2
    assert "no labelled images" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    # lowercase identifiers are custom class names (tumor, stroma); this is neither
    bad.write_text("path,label\nx.png,Not a class!\n")
    assert main(["train", "--data", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "line 2: unknown class 'Not a class!'" in capsys.readouterr().err
