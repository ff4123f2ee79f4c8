"""clip_predictions.csv: columns, spreadsheet safety, exact read-back, import, atomicity."""

from __future__ import annotations

import csv

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvdesk.export import ExportError
from pvdesk.export.atomic import atomic_write
from pvdesk.export.csv import (
    DANGEROUS,
    TEXT_COLUMNS,
    columns,
    import_csv,
    read_predictions_csv,
    write_predictions_csv,
    write_rows_csv,
)
from pvdesk.review import ReviewStore, TilePrediction
from pvdesk.review.sample import make_sample_store
from pvdesk.taxonomy import CLASS_NAMES

EIGHT = ["source", "tile_x", "tile_y", "tile_w", "tile_h", "mpp", "model", "predicted",
         "predicted_group", "confidence", "p_adenosis", "p_fibroadenoma", "p_tubular_adenoma",
         "p_phyllodes_tumor", "p_ductal_carcinoma", "p_lobular_carcinoma",
         "p_mucinous_carcinoma", "p_papillary_carcinoma", "review_status", "review_label",
         "reviewer", "reviewed_at", "tile_status", "patient", "model_sha256"]

HOSTILE = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tlead tab", "\rcr", "'quoted", "''two",
           "=HYPERLINK(\"http://x\",\"a, b\")", 'say "hi"', "line\nbreak", "crlf\r\nx",
           "naïve résumé 病理", "-", "plain", " =spaced", "a,b;c", "'=already",
           "\n=cmd|' /C calc'!A0", "  \t+1", "＝1+1", "﹦2", "＠x", "\u200b=zero width",
           "\u3000-ideographic", "\xa0@nbsp", "a =not first"]
FORMULA_LIKE = {"=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tlead tab", "\rcr", "'quoted", "''two",
                "=HYPERLINK(\"http://x\",\"a, b\")", "-", " =spaced", "'=already",
                "\n=cmd|' /C calc'!A0", "  \t+1", "＝1+1", "﹦2", "＠x", "\u200b=zero width",
                "\u3000-ideographic", "\xa0@nbsp"}


def _raw_text_cells(path):
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    return [c for row in rows[1:] for col, c in zip(header, row, strict=True) if col in TEXT_COLUMNS]


def _hostile_rows(texts):
    return [{"source": t, "tile_x": -5 if i == 0 else i, "tile_y": 0, "tile_w": 224,
             "tile_h": 224, "mpp": 0.5, "model": t, "probs": [0.25, 0.75],
             "review_status": "corrected", "review_label": "uncertain", "reviewer": t,
             "reviewed_at": "2026-01-01T00:00:00.000Z"} for i, t in enumerate(texts)]


def test_hostile_text_round_trips_and_never_starts_a_formula(tmp_path):
    path = tmp_path / "h.csv"
    assert write_rows_csv(path, ["benign", "malignant"], _hostile_rows(HOSTILE)) == len(HOSTILE)
    assert not [c for c in _raw_text_cells(path) if c.startswith(DANGEROUS)]
    table = read_predictions_csv(path)
    assert table.classes == ["benign", "malignant"]
    assert [r["source"] for r in table.rows] == HOSTILE
    assert [r["reviewer"] for r in table.rows] == HOSTILE
    assert table.rows[0]["tile_x"] == -5  # a negative number stays a number
    assert table.rows[0]["predicted"] == "malignant" and table.rows[0]["confidence"] == 0.75
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(path, keep_default_na=False)
    assert list(df.columns) == columns(["benign", "malignant"])
    assert df["source"].tolist() == ["'" + t if t in FORMULA_LIKE else t for t in HOSTILE]
    assert df["p_malignant"].dtype.kind == "f" and df["tile_x"].tolist()[0] == -5


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                      min_size=1, max_size=5))
def test_any_text_round_trips(tmp_path, texts):
    path = tmp_path / "any.csv"
    write_rows_csv(path, ["benign", "malignant"], _hostile_rows(texts))
    assert [r["source"] for r in read_predictions_csv(path).rows] == texts
    assert not [c for c in _raw_text_cells(path) if c.startswith(DANGEROUS)]


def test_rows_without_a_store(tmp_path):
    from pvdesk.export.csv import prediction_row

    preds = [TilePrediction("/s.svs", 0, 224, 224, 224, 0.5, [0.1] * 7 + [0.3]),
             TilePrediction("@patch.png", None, None, None, None, None, [0.3] + [0.1] * 7)]
    path = tmp_path / "clip_predictions.csv"
    write_rows_csv(path, CLASS_NAMES, (prediction_row(p, "demo@1") for p in preds))
    rows = read_predictions_csv(path).rows
    assert [r["predicted"] for r in rows] == ["papillary_carcinoma", "adenosis"]
    assert [r["predicted_group"] for r in rows] == ["malignant", "benign"]
    assert rows[1]["source"] == "@patch.png" and rows[1]["tile_x"] is None
    assert rows[0]["review_status"] == "unreviewed" and rows[0]["reviewer"] == ""


def test_store_export_columns_and_review_fields(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=10, patches=3,
                                        reviewer="=evil()")
    store.correct(ids[0], "ductal_carcinoma")
    store.confirm(ids[1])
    path = tmp_path / "clip_predictions.csv"
    assert write_predictions_csv(store, path) == 13
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(path)
    assert list(df.columns) == EIGHT
    assert len(df) == 13 and df["tile_x"].isna().sum() == 3
    table = read_predictions_csv(path)
    r0 = table.rows[0]
    assert r0["reviewer"] == "=evil()" and r0["review_label"] == "ductal_carcinoma"
    assert r0["review_status"] == "corrected" and r0["reviewed_at"].endswith("Z")
    assert r0["predicted_group"] in ("benign", "malignant")
    assert table.rows[5]["review_status"] == "unreviewed" and table.rows[5]["reviewer"] == ""
    recs = list(store.tiles())
    assert [r["p_adenosis"] for r in table.rows] == [r.probs[0] for r in recs]  # exact floats
    store.close()


def test_binary_and_mixed_runs(tmp_path):
    with ReviewStore(tmp_path / "s.pvdb", reviewer="r") as store:
        store.add_slide("s", "/s.svs", {})
        b = store.add_run("bin", "1", "h", ["benign", "malignant"], "cpu", {})
        store.add_predictions(b, "s", [TilePrediction("/s.svs", 0, 0, 10, 10, 1.0, [0.1, 0.9])])
        write_predictions_csv(store, tmp_path / "b.csv", run_id=b)
        assert read_predictions_csv(tmp_path / "b.csv").classes == ["benign", "malignant"]
        e = store.add_run("eight", "1", "h", list(CLASS_NAMES), "cpu", {})
        store.add_predictions(e, "s", [TilePrediction("/s.svs", 0, 0, 10, 10, 1.0,
                                                      [1 / 8] * 8)])
        write_predictions_csv(store, tmp_path / "all.csv")
        t = read_predictions_csv(tmp_path / "all.csv")
        assert t.classes == ["benign", "malignant", *CLASS_NAMES]
        assert t.rows[0]["p_adenosis"] is None and t.rows[1]["p_benign"] is None
        fresh = ReviewStore(tmp_path / "fresh.pvdb")
        import_csv(fresh, tmp_path / "all.csv")
        assert sorted(r.model for r in fresh.runs()) == ["bin@1", "eight@1"]
        assert [len(r.classes) for r in fresh.runs()] == [2, 8]
        fresh.close()


def test_import_reproduces_decisions(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "a.pvdb", n_tiles=12, patches=4)
    store.correct_many(ids[:3], "non_tissue")
    store.confirm(ids[5])
    store.confirm(ids[-1])  # a patch
    path = tmp_path / "a.csv"
    write_predictions_csv(store, path)
    with ReviewStore(tmp_path / "b.pvdb", reviewer="importer") as fresh:
        result = import_csv(fresh, path)
        assert result["rows"] == 16 and result["decisions"] == 5
        write_predictions_csv(fresh, tmp_path / "b.csv")
        assert read_predictions_csv(tmp_path / "b.csv").rows == read_predictions_csv(path).rows
        n_audit = len(fresh.audit())
        assert {a.action for a in fresh.audit()} == {"import"}
        import_csv(fresh, path)  # twice is harmless
        assert len(fresh.audit()) == n_audit and len(list(fresh.tiles())) == 16
    # Back into the original store: the same tiles and run are reused.
    import_csv(store, path)
    assert len(store.runs()) == 1 and len(list(store.tiles())) == 16
    store.close()


def test_bad_csv_is_refused_and_store_untouched(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with ReviewStore(tmp_path / "s.pvdb") as store:
        with pytest.raises(ExportError, match="not a predictions CSV"):
            import_csv(store, bad)
        good = tmp_path / "g.csv"
        rows = _hostile_rows(["x", "y"])
        rows[1]["review_label"] = "cancer"
        write_rows_csv(good, ["benign", "malignant"], rows)
        with pytest.raises(ExportError, match="unknown review_label"):
            import_csv(store, good)
        assert store.runs() == [] and store.slides() == []
    with pytest.raises(ValueError, match="unknown CSV columns"):
        write_rows_csv(tmp_path / "u.csv", ["a"], [{"sauce": "x"}])
    with pytest.raises(ValueError, match="needs a number"):
        write_rows_csv(tmp_path / "u.csv", ["a"], [{"tile_x": "=1"}])


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write("new, half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with atomic_write(path) as fh:
        fh.write("new")
    assert path.read_text() == "new"
