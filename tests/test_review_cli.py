"""`pvdesk review stats|export|import` through pvdesk.cli.main."""

from __future__ import annotations

import json
import sqlite3

from pvdesk.cli import main
from pvdesk.export.csv import read_predictions_csv
from pvdesk.review import ReviewStore
from pvdesk.review.sample import make_sample_store
from pvdesk.review.schema import SCHEMA_VERSION


def _store(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=8)
    store.correct(ids[0], "non_tissue")
    store.confirm_many(ids[1:3])
    store.close()
    return str(tmp_path / "s.pvdb")


def test_stats(tmp_path, capsys):
    path = _store(tmp_path)
    assert main(["review", "stats", path]) == 0
    out = capsys.readouterr().out
    assert "reviewed:  3/8 (1 corrected)" in out and "sample-model@1.0" in out
    assert main(["review", "stats", path, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["slides"], data["tiles"], data["reviewed"], data["corrected"]) == (1, 8, 3, 1)
    assert data["per_class"]["non_tissue"] == {"predicted": 0, "reviewed": 1}


def test_export_and_import(tmp_path, capsys):
    path = _store(tmp_path)
    csv_path, gj = tmp_path / "c.csv", tmp_path / "g.geojson"
    assert main(["review", "export", path, "--csv", str(csv_path), "--geojson", str(gj)]) == 0
    assert "8 rows" in capsys.readouterr().out
    assert len(json.loads(gj.read_text())["features"]) == 8
    assert main(["review", "export", path, "--csv", str(csv_path), "--run", "1"]) == 0
    new = tmp_path / "n.pvdb"
    assert main(["review", "import", str(new), "--csv", str(csv_path), "--reviewer", "@me"]) == 0
    assert "3 reviewed" in capsys.readouterr().out
    with ReviewStore(new, view="latest") as store:  # the CSV's reviewers' decisions
        assert store.counts() == (3, 8, 1)
        assert store.audit()[0].comment.endswith("by @me")
    assert read_predictions_csv(csv_path).rows[0]["review_label"] == "non_tissue"


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    path = _store(tmp_path)
    missing = str(tmp_path / "missing.pvdb")
    assert main(["review", "stats", missing]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.pvdb" in err
    assert not (tmp_path / "missing.pvdb").exists()
    assert main(["review", "export", path]) == 2
    assert main(["review", "export", path, "--csv", str(tmp_path / "c.csv"), "--run", "9"]) == 2
    assert main(["review", "export", path, "--csv", str(tmp_path / "no/such/c.csv")]) == 2
    assert "c.csv" in capsys.readouterr().err
    junk = tmp_path / "junk.csv"
    junk.write_text("nothing,here\n")
    assert main(["review", "import", path, "--csv", str(junk)]) == 2
    assert "junk.csv" in capsys.readouterr().err
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    con.close()
    assert main(["review", "stats", path]) == 2
    assert "newer" in capsys.readouterr().err
