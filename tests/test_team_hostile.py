"""Hostile inputs to the team verbs (review merge, agreement, reviewers, settings): damaged,
foreign and newer stores and bad arguments end in one line and exit 2, never a traceback;
inputs are never changed and a refused merge leaves no OUT behind."""

from __future__ import annotations

import hashlib

import pytest
from hostile_inputs import MAY_OPEN, good_store, store_inputs

from pvdesk.cli import main


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-team")
    return root, store_inputs(root / "stores"), good_store(root / "good.pvdb")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_or_ok(rc: int, err: str, may_open: bool) -> None:
    if rc == 0 and may_open:
        return
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_damaged_stores_are_refused_with_one_line_and_left_untouched(stores, tmp_path, capsys):
    _, inputs, good = stores
    for name, path in inputs.items():
        may_open = name.startswith(MAY_OPEN)
        before = _sha(path) if path.is_file() else None
        out = tmp_path / f"{name}-merged.pvdb"
        for argv in (["review", "merge", str(out), str(good), str(path)],
                     ["review", "agreement", str(path), "--out", str(tmp_path / f"{name}-r"),
                      "--resamples", "10"],
                     ["review", "reviewers", str(path)],
                     ["review", "settings", str(path)]):
            rc = main(argv)
            err = capsys.readouterr().err
            _one_line_or_ok(rc, err, may_open)
            if rc == 2 and argv[1] == "merge":
                assert not out.exists()
                assert not [p for p in tmp_path.iterdir() if ".merge-" in p.name]
        if before is not None:
            assert _sha(path) == before, name


def _run(argv) -> int:
    """main's exit status; argparse's usage errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv, says", [
    (["review", "agreement", "STORE", "--out", "OUT", "--resamples", "-1"], "--resamples"),
    (["review", "agreement", "STORE", "--out", "OUT", "--resamples", "1e9"], "--resamples"),
    (["review", "agreement", "STORE", "--out", "OUT", "--seed", "x"], "--seed"),
    (["review", "agreement", "STORE", "--out", "OUT", "--reviewers", ","], "--reviewers"),
    (["review", "agreement", "STORE", "--out", "OUT", "--reviewers", "zed"], "zed"),
    (["review", "agreement", "STORE", "--out", "OUT", "--run", "7"], "7"),
    (["review", "agreement", "STORE", "--out", "OUT", "--decisions", "last"], "--decisions"),
    (["review", "agreement", "STORE", "--out", "OUT", "--order", "benign,tumour"], "tumour"),
    (["review", "agreement", "STORE", "--out", "OUT", "--order", "benign"], "two or more"),
    (["review", "agreement", "STORE", "--out", "OUT", "--order", "benign,benign"],
     "two or more"),
    (["review", "agreement", "STORE"], "--out"),
    (["review", "agreement", "STORE", "--out", "FILE/x"], "file"),
    (["review", "reviewers", "STORE", "--set-role", "ana"], "NAME="),
    (["review", "reviewers", "STORE", "--set-role", "ana=boss"], "boss"),
    (["review", "reviewers", "STORE", "--set-role", "=adjudicator"], "NAME="),
    (["review", "reviewers", "STORE", "--set-role", "x" * 80 + "=reader"], "reviewer name"),
    (["review", "settings", "STORE", "--blinded", "maybe"], "--blinded"),
    (["review", "settings", "STORE", "--queue-order", "entropy"], "--queue-order"),
    (["review", "settings", "STORE", "--queue-seed", "-4"], "--queue-seed"),
    (["review", "merge", "OUT"], "stores"),
    (["review", "merge", "FILE/m.pvdb", "STORE"], "file"),
    (["review", "merge", "OUT", "STORE", "MISSING"], "no such review store"),
])
def test_bad_arguments_exit_2_with_one_line(stores, tmp_path, capsys, argv, says):
    _, _, good = stores
    store = tmp_path / "s.pvdb"
    store.write_bytes(good.read_bytes())
    (tmp_path / "file").write_text("x")
    names = {"STORE": str(store), "OUT": str(tmp_path / "out"), "FILE": str(tmp_path / "file"),
             "MISSING": str(tmp_path / "missing.pvdb")}
    for key, value in names.items():
        argv = [value + a[len(key):] if a.startswith(key) else a for a in argv]
    before = _sha(store)
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
    assert _sha(store) == before
    assert not (tmp_path / "out").exists()


def test_merge_refuses_a_store_whose_audit_names_a_missing_tile(stores, tmp_path, capsys):
    import sqlite3

    _, _, good = stores
    bad = tmp_path / "bad.pvdb"
    bad.write_bytes(good.read_bytes())
    con = sqlite3.connect(bad)
    con.execute("INSERT INTO audit(batch_id, at, reviewer, action, tile_id, new_status, "
                "new_label) VALUES (99, '2020-01-01Z', 'x', 'correct', 9999, 'corrected', 'a')")
    con.commit()
    con.close()
    out = tmp_path / "m.pvdb"
    assert main(["review", "merge", str(out), str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tile 9999" in err and not out.exists()
