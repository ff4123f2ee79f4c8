"""A stand-in for ``python -m training train --progress json`` (retrain UI tests).

``python fake_training_child.py MODE [ARGS...]``: ok (three epochs, then done; lines arrive in
pieces), error (an error event, exit 2), crash (a traceback on stderr, exit 1, no final
event), slow (epochs until killed), stubborn (ignores SIGTERM, sleeps until killed),
linear (a linear probe: embeddings, training, report phases and no epochs; writes an 8-class
metrics.json into ``--out``, as the training package's report writer does, then done).
ARGS are the training arguments (``--out`` is the folder ``done`` names); with
FAKE_ARGS_FILE set, they are written there as JSON. With FAKE_HOLD_FILE set, ``linear``
waits in its training phase until that file exists (a test looks at the dialog meanwhile).
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

CLASSES = ["adenosis", "fibroadenoma", "tubular_adenoma", "phyllodes_tumor",
           "ductal_carcinoma", "lobular_carcinoma", "mucinous_carcinoma",
           "papillary_carcinoma"]


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, "t": 0.0, **fields}) + "\n")
    sys.stdout.flush()


def main(mode: str) -> int:
    args = sys.argv[2:]
    if os.environ.get("FAKE_ARGS_FILE"):
        with open(os.environ["FAKE_ARGS_FILE"], "w") as fh:
            json.dump(args, fh)
    out = args[args.index("--out") + 1] if "--out" in args else "/nowhere"
    if mode == "linear":
        return linear(out)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    emit("start", verb="train", head="clip-mlp", out="/nowhere", classes=["a", "b"], epochs=3)
    if mode == "ok":
        sys.stdout.write("not json: a stray line\n")
        emit("stage", stage="train", total=3)
        for e in range(1, 4):
            line = json.dumps({"event": "epoch", "t": 0.1, "epoch": e, "epochs": 3,
                               "train_loss": 1.0 / e, "train_acc": 0.5 + e / 10,
                               "val_loss": 1.2 / e, "val_acc": None if e == 2 else 0.4 + e / 10,
                               "eta_s": 3 - e})
            sys.stdout.write(line[:20])
            sys.stdout.flush()
            time.sleep(0.05)
            sys.stdout.write(line[20:] + "\n")
            sys.stdout.flush()
        emit("done", out=out, metrics=None)
        return 0
    if mode == "error":
        print("some library warning", file=sys.stderr, flush=True)
        emit("error", message="/data: no labelled images found", exit_code=2)
        return 2
    if mode == "crash":
        print("Traceback (most recent call last):\nValueError: boom", file=sys.stderr,
              flush=True)
        return 1
    emit("stage", stage="train", total=1000)
    for e in range(1, 1000):
        time.sleep(0.2)
        if mode == "slow":
            emit("epoch", epoch=e, epochs=1000, train_loss=1.0, val_loss=1.0)
    return 0


def eight_class_metrics() -> dict:
    """A plausible 8-class result (rows: true class, columns: predicted), 40 images each."""
    n = len(CLASSES)
    cm = [[0] * n for _ in range(n)]
    for i in range(n):
        cm[i][i] = 31 + i % 3
        cm[i][(i + 1) % n] = 40 - cm[i][i] - 2
        cm[i][(i + 5) % n] = 2
    per = {}
    for i, c in enumerate(CLASSES):
        tp, pred, true = cm[i][i], sum(r[i] for r in cm), sum(cm[i])
        p, r = tp / pred, tp / true
        per[c] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r), "support": true}
    total = sum(map(sum, cm))
    mean = lambda k: sum(v[k] for v in per.values()) / n  # noqa: E731
    return {"n": total, "classes": CLASSES, "confusion": cm, "per_class": per,
            "accuracy": sum(cm[i][i] for i in range(n)) / total,
            "balanced_accuracy": mean("recall"), "macro_precision": mean("precision"),
            "macro_recall": mean("recall"), "macro_f1": mean("f1"),
            "weighted_precision": mean("precision"), "weighted_recall": mean("recall"),
            "weighted_f1": mean("f1"), "ece": 0.041,
            "bootstrap": {"n": 200, "unit": "patient",
                          "ci95": {"accuracy": [0.74, 0.86], "macro_f1": [0.72, 0.85]}},
            "binary": {"accuracy": 0.93, "balanced_accuracy": 0.93, "macro_f1": 0.93}}


def linear(out: str) -> int:
    """A linear probe's phases: embeddings (steps), training (settings tried), report."""
    hold = os.environ.get("FAKE_HOLD_FILE")
    emit("start", verb="train", head="clip-linear", backbone="demo-clip-rn50", out=out,
         classes=CLASSES, epochs=None)
    emit("note", message="no ImageNet weights: random init")
    emit("warning", message="backbone demo-clip-rn50 has random weights: the new model will "
                            "be marked UNTRAINED")
    emit("stage", stage="embeddings", total=40)
    for i in range(1, 41, 8):
        emit("step", stage="embeddings", step=i, steps=40, epoch=None, loss=None, eta_s=2.0)
        time.sleep(0.02)
    emit("step", stage="embeddings", step=40, steps=40, epoch=None, loss=None, eta_s=0.0)
    emit("stage", stage="train", total=7)
    for i in range(1, 8):
        emit("step", stage="train", step=i, steps=7, epoch=None, loss=0.9 / i,
             eta_s=float(7 - i))
        if i == 3 and hold:
            deadline = time.monotonic() + 60
            while not os.path.exists(hold) and time.monotonic() < deadline:
                time.sleep(0.05)
    emit("stage", stage="report", total=None)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    metrics = eight_class_metrics()
    (folder / "metrics.json").write_text(json.dumps({
        "title": f"{folder.name}: test split", "metrics": metrics,
        "context": {"bundle": folder.name, "kind": "clip-linear",
                    "backbone": "demo-clip-rn50 (untrained)",
                    "split": f"test ({metrics['n']} images)"}}))
    emit("done", out=out, metrics={"accuracy": metrics["accuracy"], "n": metrics["n"]})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
