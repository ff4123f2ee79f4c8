"""A stand-in for ``python -m training train --progress json`` (retrain UI tests).

``python fake_training_child.py MODE [ARGS...]``: ok (three epochs, then done; lines arrive in
pieces), error (an error event, exit 2), crash (a traceback on stderr, exit 1, no final
event), slow (epochs until killed), stubborn (ignores SIGTERM, sleeps until killed).
ARGS are the training arguments (``--out`` is the folder ``done`` names); with
FAKE_ARGS_FILE set, they are written there as JSON.
"""

import json
import os
import signal
import sys
import time


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, "t": 0.0, **fields}) + "\n")
    sys.stdout.flush()


def main(mode: str) -> int:
    args = sys.argv[2:]
    if os.environ.get("FAKE_ARGS_FILE"):
        with open(os.environ["FAKE_ARGS_FILE"], "w") as fh:
            json.dump(args, fh)
    out = args[args.index("--out") + 1] if "--out" in args else "/nowhere"
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
