"""A slide's patient: stored (audited), migrated into old stores, exported in the CSV's
patient column, imported back, set from the command line, and grouped by in training splits."""

from __future__ import annotations

import sqlite3

import pytest

from pvdesk.cli import main
from pvdesk.errors import StoreError
from pvdesk.export.csv import read_predictions_csv, write_predictions_csv, write_rows_csv
from pvdesk.review import ReviewStore, TilePrediction
from pvdesk.review.migrations import MIGRATIONS
from pvdesk.review.schema import APPLICATION_ID, SCHEMA_VERSION
from pvdesk.taxonomy import CLASS_NAMES


def _onehot(i: int) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(len(CLASS_NAMES))]


def _store_with_slides(path, slides=("a", "b")) -> None:
    with ReviewStore(path, reviewer="tester") as store:
        run = store.add_run("m", "1", "", list(CLASS_NAMES), "cpu", {})
        for k, s in enumerate(slides):
            store.add_slide(s, f"/x/{s}.svs", {})
            store.add_predictions(run, s, [TilePrediction(f"/x/{s}.svs", 224 * i, 0, 224, 224,
                                                          0.5, _onehot((i + k) % 8))
                                           for i in range(3)])


def test_patient_is_stored_audited_and_cleared(tmp_path):
    path = tmp_path / "s.pvdb"
    _store_with_slides(path)
    with ReviewStore(path, reviewer="tester") as store:
        store.set_patient("a", "  P-001 ")
        assert store.patients() == {"a": "P-001"}
        assert {s["slide_id"]: s["patient"] for s in store.slides()} == {"a": "P-001", "b": None}
        store.set_patient("a", "")
        assert store.patients() == {}
        rows = [r for r in store.audit() if r.action == "patient"]
        assert [(r.slide_id, r.old_label, r.new_label, r.reviewer) for r in rows] == [
            ("a", None, "P-001", "tester"), ("a", "P-001", None, "tester")]
        with pytest.raises(StoreError, match="unknown slide"):
            store.set_patient("nope", "P-2")
        for bad in ("=HYPERLINK(x)", "x" * 65, "a\nb", "Smith, John"):
            with pytest.raises(StoreError, match="not a short study code"):
                store.set_patient("b", bad)
        assert store.patients() == {}


def test_a_version_1_store_is_migrated_with_its_data(tmp_path):
    path = tmp_path / "old.pvdb"
    con = sqlite3.connect(path)
    for sql in MIGRATIONS[0]:
        con.execute(sql)
    con.execute(f"PRAGMA application_id={APPLICATION_ID}")
    con.execute("PRAGMA user_version=1")
    con.execute("INSERT INTO slides(slide_id, path, added_at) VALUES ('old', '/o.svs', 't')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="needs an upgrade"):
        ReviewStore(path, readonly=True)
    with ReviewStore(path) as store:
        assert store.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [s["patient"] for s in store.slides()] == [None]
        store.set_patient("old", "P9")
        assert store.patients() == {"old": "P9"}
        from pvdesk.regions import region_count
        assert region_count(store) == 0  # the regions table comes with the migration


def test_csv_carries_the_patient_and_import_restores_it(tmp_path):
    path = tmp_path / "s.pvdb"
    _store_with_slides(path)
    with ReviewStore(path) as store:
        store.set_patient("a", "P-001")
        n = write_predictions_csv(store, tmp_path / "e.csv")
    assert n == 6
    table = read_predictions_csv(tmp_path / "e.csv")
    header = (tmp_path / "e.csv").read_text().splitlines()[0].split(",")
    assert header[-3:] == ["tile_status", "patient", "model_sha256"]
    by_source = {r["source"]: r["patient"] for r in table.rows}
    assert by_source == {"/x/a.svs": "P-001", "/x/b.svs": ""}
    with ReviewStore(tmp_path / "new.pvdb") as other:
        from pvdesk.export.csv import import_csv

        import_csv(other, tmp_path / "e.csv")
        assert other.patients() == {"/x/a.svs": "P-001"}


def test_older_csv_layouts_still_read(tmp_path):
    rows = [{"source": "/x/a.svs", "tile_x": 0, "tile_y": 0, "tile_w": 2, "tile_h": 2,
             "mpp": 0.5, "model": "m@1", "probs": _onehot(0)}]
    write_rows_csv(tmp_path / "new.csv", CLASS_NAMES, rows)
    lines = (tmp_path / "new.csv").read_text().splitlines()
    for drop in (1, 2, 3):  # without model_sha256; also without patient; also tile_status
        old = [",".join(line.split(",")[:-drop]) for line in lines]
        (tmp_path / "old.csv").write_text("\n".join(old) + "\n")
        table = read_predictions_csv(tmp_path / "old.csv")
        assert table.classes == list(CLASS_NAMES)
        assert table.rows[0]["tile_status"] == "ok"
        assert table.rows[0].get("patient") in (None, "")


def test_import_refuses_a_patient_cell_that_is_not_a_code(tmp_path):
    from pvdesk.export import ExportError
    from pvdesk.export.csv import import_csv

    rows = [{"source": "/x/a.svs", "tile_x": 0, "tile_y": 0, "tile_w": 2, "tile_h": 2,
             "mpp": 0.5, "model": "m@1", "probs": _onehot(0), "patient": "Smith, John"}]
    write_rows_csv(tmp_path / "p.csv", CLASS_NAMES, rows)
    with ReviewStore(tmp_path / "s.pvdb") as store:
        with pytest.raises(ExportError, match=r"p\.csv: line 2: patient 'Smith, John'"):
            import_csv(store, tmp_path / "p.csv")
        assert store.slides() == []


def test_cli_lists_sets_and_refuses(tmp_path, capsys):
    path = tmp_path / "s.pvdb"
    _store_with_slides(path)
    assert main(["review", "patient", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["a\t-\t/x/a.svs", "b\t-\t/x/b.svs"]
    assert main(["review", "patient", str(path), "--set", "P1"]) == 2
    assert "holds 2 slides; name one with --slide" in capsys.readouterr().err
    assert main(["review", "patient", str(path), "--slide", "zz", "--set", "P1"]) == 2
    assert "no slide 'zz'" in capsys.readouterr().err
    assert main(["review", "patient", str(path), "--slide", "b", "--set", "=1+1"]) == 2
    assert "not a short study code" in capsys.readouterr().err
    assert main(["review", "patient", str(path), "--slide", "b", "--set", "P1"]) == 0
    assert main(["review", "patient", str(path), "--slide", "a", "--set", "P1"]) == 0
    capsys.readouterr()
    assert main(["review", "patient", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["a\tP1\t/x/a.svs", "b\tP1\t/x/b.svs"]
    assert main(["review", "patient", str(path), "--slide", "a", "--clear"]) == 0
    with ReviewStore(path, readonly=True) as store:
        assert store.patients() == {"b": "P1"}


def test_training_splits_keep_one_patients_slides_together(tmp_path):
    """Eight slides of four patients (two slides each): in every seed's split, both slides
    of a patient land on the same side, which a per-slide grouping does not guarantee."""
    from training_fixtures import colour_slide, review_rows

    from training.data.review_csv import load_review_csv
    from training.data.split import split_dataset

    rows = []
    for i in range(8):
        slide, tiles = colour_slide(tmp_path / f"slide{i}.tif", classes=2, per_class=2, seed=i)
        rows += [dict(r, patient=f"P{i // 2}") for r in review_rows(slide, tiles, "confirmed")]
    csv_path = tmp_path / "clip_predictions.csv"
    write_rows_csv(csv_path, CLASS_NAMES, rows)
    ds = load_review_csv(csv_path)
    assert {s.patient for s in ds.samples} == {f"patient:P{k}" for k in range(4)}
    for seed in range(5):
        split = split_dataset(ds, fractions=(0.5, 0.25, 0.25), seed=seed)
        sides: dict[str, set] = {}
        for s in split.samples:
            sides.setdefault(s.patient, set()).add(s.split)
        assert all(len(v) == 1 for v in sides.values()), sides
