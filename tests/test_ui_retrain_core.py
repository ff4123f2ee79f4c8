"""Retraining from the GUI, the Qt-free parts: command lines, defaults, CSV merging, the
JSON-lines progress fold, and reading a bundle's evaluation results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pvdesk.app.retrain_plan import HEADS, RetrainPlan, child_env, merge_csvs, prepare_data
from pvdesk.app.retrain_progress import LineBuffer, RunState, format_eta, parse_line
from pvdesk.bundle_metrics import bundle_reports
from pvdesk.export.csv import read_predictions_csv, write_rows_csv


def test_plan_command_line_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("PVDESK_HOME", str(tmp_path))
    p = RetrainPlan("folder", "/data", head="clip-mlp", backbone="demo-clip-rn50", epochs=3,
                    lr=0.01, extra=["--bootstrap", "10"])
    cmd = p.command("/py")
    assert cmd[:4] == ["/py", "-m", "training", "train"]
    args = dict(zip(cmd[4::2], cmd[5::2], strict=False))
    assert args["--data"] == "/data" and args["--head"] == "clip-mlp"
    assert args["--progress"] == "json" and args["--backbone"] == "demo-clip-rn50"
    assert args["--epochs"] == "3" and float(args["--lr"]) == 0.01
    assert Path(args["--out"]).parent == tmp_path / "models"
    assert cmd[-3:] == ["--watch-stdin", "--bootstrap", "10"]  # user extras come last
    # the linear probe has no epochs or learning rate; defaults are left to the package
    lin = RetrainPlan("csv", "/x.csv", head="clip-linear", epochs=5, lr=0.1,
                      include_unreviewed=True, split_by_image=True).arguments()
    assert "--epochs" not in lin and "--lr" not in lin and "--backbone" not in lin
    assert "--include-unreviewed" in lin and lin[-3:] == ["--split-unit", "image", "--watch-stdin"]
    with pytest.raises(ValueError):
        RetrainPlan("folder", "/d", head="svm")


def test_defaults_match_the_training_package():
    heads = pytest.importorskip("training.heads")
    resnet = pytest.importorskip("training.train_resnet")
    mlp = heads.MlpConfig()
    assert HEADS["clip-mlp"][1:] == (mlp.epochs, mlp.lr)
    assert HEADS["resnet50"][1:] == (resnet.DEFAULTS["epochs"], resnet.DEFAULTS["lr"])
    from training.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["train"]
    assert set(sub._option_string_actions["--head"].choices) == set(HEADS)


def test_child_env_puts_the_source_tree_first():
    env = child_env({"PYTHONPATH": "/elsewhere"})
    root = str(Path(__file__).resolve().parents[1])
    assert env["PYTHONPATH"].split(":")[:2] == [root, "/elsewhere"]
    assert env["PYTHONUNBUFFERED"] == "1"


def test_merge_csvs_unions_classes_and_absolutises_sources(tmp_path, pvdesk_home):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_rows_csv(a / "p.csv", ["adenosis", "fibroadenoma"],
                   [{"source": "img1.png", "probs": [0.9, 0.1], "review_status": "confirmed"}])
    write_rows_csv(b / "p.csv", ["ductal_carcinoma"],
                   [{"source": "=evil.png", "probs": [1.0], "review_status": "corrected",
                     "review_label": "lobular_carcinoma"}])
    out = prepare_data("csv", [a / "p.csv", b / "p.csv"])
    assert Path(out).parent == tmp_path / "home" / "training-data"
    table = read_predictions_csv(out)
    assert table.classes == ["adenosis", "fibroadenoma", "ductal_carcinoma"]
    assert [r["source"] for r in table.rows] == [str(a / "img1.png"), str(b / "=evil.png")]
    assert table.rows[1]["review_label"] == "lobular_carcinoma"
    assert table.rows[0]["p_ductal_carcinoma"] is None
    assert prepare_data("csv", [a / "p.csv"]) == str(a / "p.csv")  # one file: as is
    assert merge_csvs([a / "p.csv"], tmp_path / "one.csv") == 1


def test_line_buffer_and_parse():
    buf = LineBuffer()
    assert buf.feed(b'{"event": "st') == []
    assert buf.feed(b'age"}\nplain\r\n{') == ['{"event": "stage"}', "plain"]
    assert buf.flush() == ["{"]
    assert parse_line('{"event": "note", "message": "x"}')["message"] == "x"
    for bad in ("plain", "{broken", "[1, 2]", '{"no_event": 1}'):
        assert parse_line(bad) is None
    assert format_eta(None) == "" and format_eta(75) == "1 min 15 s"
    assert format_eta(7300) == "2 h 01 min"


def test_run_state_folds_events():
    st = RunState()
    lines = [
        {"event": "start", "verb": "train", "head": "resnet50", "out": "/b", "classes": ["a"],
         "epochs": 2},
        {"event": "warning", "message": "few patients"},
        {"event": "stage", "stage": "train", "total": 2},
        {"event": "step", "stage": "train", "step": 5, "steps": 10, "epoch": 1, "eta_s": 9},
        {"event": "epoch", "epoch": 1, "epochs": 2, "train_loss": 0.9, "val_loss": 1.0,
         "train_acc": 0.5, "val_acc": 0.6, "eta_s": 30, "improved": True},
        {"event": "step", "stage": "train", "step": 5, "steps": 10, "epoch": 2, "eta_s": 9},
    ]
    for ev in lines:
        st.feed(json.dumps(ev))
    st.feed("a stray line")
    assert st.warnings == ["few patients"]
    assert st.fraction() == pytest.approx(0.75)  # one epoch done, half of the second
    assert "epoch 1/2" in st.status_text() and "30 s" in st.status_text()
    assert st.curves()["val_acc"] == [0.6]
    assert "a stray line" in st.log and any("epoch 1/2" in x for x in st.log)
    st.feed(json.dumps({"event": "error", "message": "bad data", "exit_code": 2}))
    assert st.outcome == "error" and st.error_text("tail") == "bad data"
    assert RunState().error_text("  Traceback\nboom ") == "Traceback\nboom"
    st2 = RunState(log_lines=3)
    for i in range(5):
        st2.feed(f"line {i}")
    assert st2.new_lines(3) == ["line 3", "line 4"] and st2.new_lines(0) == list(st2.log)


def test_bundle_reports(tmp_path):
    man = {"name": "m", "provenance": {}}
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    assert bundle_reports(tmp_path) == []  # no metrics: an empty list
    man["provenance"] = {"metrics": {"accuracy": 0.8, "macro_f1": 0.7, "split": "test", "n": 5}}
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    (rep,) = bundle_reports(tmp_path)
    assert not rep.full and rep.class_rows() == [] and ("Accuracy", 0.8) in rep.summary_rows()
    ev = tmp_path / "evaluations" / "test-1"
    ev.mkdir(parents=True)
    metrics = {"n": 4, "accuracy": 0.75, "balanced_accuracy": 0.7, "macro_f1": 0.6,
               "macro_precision": 0.65, "macro_recall": 0.7, "weighted_f1": 0.62,
               "per_class": {"adenosis": {"precision": 1.0, "recall": 0.5, "f1": 0.67,
                                          "support": 2}}}
    (ev / "metrics.json").write_text(json.dumps({"title": "m: test", "metrics": metrics}))
    (ev / "confusion.png").write_bytes(b"png")
    reps = bundle_reports(tmp_path)
    assert [r.title for r in reps] == ["m: test"] and reps[0].full
    assert reps[0].confusion_png == ev / "confusion.png" and reps[0].curves_png is None
    assert [r[0] for r in reps[0].class_rows()] == ["adenosis", "macro average",
                                                   "weighted average"]


def test_fake_child_is_runnable():
    import subprocess

    fake = Path(__file__).with_name("fake_training_child.py")
    out = subprocess.run([sys.executable, str(fake), "ok"], capture_output=True, text=True,
                         timeout=30)
    st = RunState()
    for line in out.stdout.splitlines():
        st.feed(line)
    assert st.outcome == "done" and len(st.history) == 3


def test_store_export_is_a_dataset_the_training_package_reads(tmp_path, pvdesk_home):
    """Data 'this project's reviewed tiles': the store becomes a clip_predictions.csv that
    training reads with the reviewer's labels (unreviewed tiles left out)."""
    pytest.importorskip("training.data")
    from review_support import fake_source, grid_tiles, record_fake_run
    from slide_factory import paint, write_pyramid

    from pvdesk.review.store import ReviewStore
    from training.data.review_csv import load_review_csv

    slide = write_pyramid(tmp_path / "s.tiff", paint(256, 128, [(0, 0, 256, 128)]), levels=1)
    with ReviewStore(tmp_path / "p.pvdb", reviewer="dr test") as store:
        run = record_fake_run(store, fake_source(slide), grid_tiles(4, 2, 64), side=64)
        tiles = [t.tile_id for t in store.tiles(run_id=run)]
        store.correct(tiles[0], "ductal_carcinoma", run)
        store.correct(tiles[1], "lobular_carcinoma", run)
        store.confirm(tiles[2], run)
        out = prepare_data("store", [], store)
    assert Path(out).parent == tmp_path / "home" / "training-data"
    ds = load_review_csv(out)
    labels = sorted(s.label for s in ds.samples)
    assert len(labels) == 3 and {"ductal_carcinoma", "lobular_carcinoma"} <= set(labels)
