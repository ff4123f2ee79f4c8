"""``python -m training`` / ``pvdesk-train``: split, train, evaluate.

    pvdesk-train split    --data DIR [--out split.csv] [--magnification 40] [--strict]
    pvdesk-train train    --data DIR|PCAM_DIR|split.csv|clip_predictions.csv
                          --head clip-linear|clip-mlp|resnet50
                          [--backbone NAME|MODEL:TAG|timm:ARCH|hf-hub:ID|local-dir:PATH|FILE]
                          [--weights FILE] --out BUNDLE
    pvdesk-train evaluate --model BUNDLE --data DIR|CSV [--split test|val|train|all] [--out DIR]
                          [--exclude-seen | --allow-contaminated]

Every verb takes ``--progress auto|tqdm|plain|json|none`` (JSON lines on stdout: see
training.progress). Exit status: 0 done, 2 a user-facing error (one line naming the file
and the problem), 3 stopped by ``--stop-after`` (resumable), 130 interrupted (resumable
after the last finished epoch: rerun the same command).
"""

from __future__ import annotations

import argparse
import signal
import sys

from pvdesk import heavy
from pvdesk.errors import PvdeskError
from training.progress import MODES, Reporter

PROG = "pvdesk-train"


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or sum(parts) <= 0:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.7,0.15,0.15, got "
                                         f"{text!r}")
    return parts  # type: ignore[return-value]


def _mags(text: str) -> list[int]:
    try:
        return [int(v.strip().upper().rstrip("X")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected magnifications like 40 or 40,100, got "
                                         f"{text!r}") from None


def _common(p, data_help: str) -> None:
    p.add_argument("--data", required=True, metavar="PATH", help=data_help)
    p.add_argument("--magnification", type=_mags, default=None, metavar="40[,100,...]",
                   help="keep only images at these magnifications (BreakHis names)")
    p.add_argument("--include-unreviewed", action="store_true",
                   help="review exports: also use unreviewed tiles, labelled by their "
                        "prediction (pseudo-labels)")
    p.add_argument("--watch-stdin", action="store_true",
                   help="stop cleanly when standard input closes (the GUI passes this, so a "
                   "GUI that dies leaves no training process behind)")
    p.add_argument("--progress", choices=MODES, default="auto",
                   help="progress display; json prints JSON lines on stdout for the GUI")


def _splitting(p) -> None:
    p.add_argument("--fractions", type=_fractions, default=(0.7, 0.15, 0.15),
                   metavar="TR,VA,TE", help="train,val,test fractions (default 0.7,0.15,0.15)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--strict", action="store_true",
                   help="refuse to split when a class has too few patients for every split")
    p.add_argument("--split-unit", choices=("patient", "image"), default="patient",
                   help="keep patients (or slides) together (default), or split images freely")
    p.add_argument("--task", choices=("subtype", "binary"), default="subtype",
                   help="8 subtypes (default) or benign/malignant")


def _run_options(p) -> None:
    p.add_argument("--device", default="auto", help="auto (default), cuda, cuda:N, mps or cpu")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto: fp32 on the CPU, mixed precision on a GPU")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch")
    p.add_argument("--workers", type=int, default=2, help="image reader threads/processes")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 helps on a busy "
                        "shared machine)")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap resamples for the 95%% intervals (default 1000; 0: none)")


def build_parser() -> argparse.ArgumentParser:
    from pvdesk import __version__
    from pvdesk.cli import SuggestingParser

    parser = SuggestingParser(prog=PROG, description="Train and evaluate pvdesk models: "
                              "patient-level splits, CLIP heads, ResNet50 fine-tuning.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = sub.add_parser("split", help="write a patient-disjoint train/val/test split manifest")
    _common(p, "a folder of images (class folders or BreakHis tree), or a review export")
    _splitting(p)
    p.add_argument("--out", default=None, metavar="CSV",
                   help="where to write the manifest (default: DATA/split.csv)")
    p.set_defaults(func=_split)

    p = sub.add_parser("train", help="train a head or fine-tune ResNet50 into a bundle")
    _common(p, "a folder (seed layout train|val|test/<class>/, class folders, BreakHis tree), "
               "a split manifest CSV, or a clip_predictions.csv review export")
    _splitting(p)
    _run_options(p)
    p.add_argument("--head", default="clip-linear", choices=("clip-linear", "clip-mlp",
                                                            "resnet50"))
    p.add_argument("--backbone", default=None,
                   help="bundle name or folder (e.g. demo-clip-rn50, demo-resnet50), an "
                        "open_clip MODEL:TAG (RN50:openai), hf-hub:ORG/REPO, local-dir:PATH, "
                        "a timm encoder timm:ARCH or timm:hf-hub:ORG/REPO (UNI, Virchow2 ...), "
                        "a weights file, or for resnet50 'imagenet' / 'random' (defaults: "
                        "clip-rn50-zeroshot; ImageNet)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a local weights file for a --backbone spec (timm:ARCH, "
                        "open_clip:MODEL)")
    p.add_argument("--clip-model", default="RN50",
                   help="open_clip architecture of a CLIP weights file (default RN50)")
    p.add_argument("--out", required=True, metavar="BUNDLE", help="bundle folder to write")
    p.add_argument("--name", default=None, help="bundle name (default: the folder's name)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default 35 for resnet50, 60 for clip-mlp)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-4 resnet50, 1e-3 clip-mlp)")
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--step-size", type=int, default=None,
                   help="StepLR step in epochs (default 10 resnet50, 20 clip-mlp)")
    p.add_argument("--gamma", type=float, default=None,
                   help="StepLR factor (default 0.1 resnet50, 0.5 clip-mlp)")
    p.add_argument("--hidden", type=int, default=None, help="clip-mlp hidden width (512)")
    p.add_argument("--dropout", type=float, default=None, help="clip-mlp dropout (0.2)")
    p.add_argument("--input-size", type=int, default=None,
                   help="resnet50 input size in px (default 224)")
    p.add_argument("--tile-um", type=float, default=None,
                   help="field of view per tile the bundle states (default: the backbone's, "
                        "or the review tiles')")
    p.add_argument("--no-cache", action="store_true", help="do not cache CLIP embeddings")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N epochs of this run, leaving a resumable checkpoint")
    p.add_argument("--fresh", action="store_true",
                   help="discard an interrupted run's checkpoint instead of resuming it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="first run patient-level K-fold cross-validation (every patient tested "
                        "once; reports per fold and pooled under BUNDLE/cv/), then train the "
                        "bundle as usual")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="evaluate any bundle (zero-shot too) on a dataset")
    _common(p, "a folder, split manifest CSV or review export")
    _run_options(p)
    p.add_argument("--model", required=True, help="bundle name or folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default: BUNDLE/evaluations/<split>-<hash>)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    seen = p.add_mutually_exclusive_group()
    seen.add_argument("--exclude-seen", action="store_true",
                      help="leave out images the bundle was trained or tuned on (its split.csv: "
                           "the same image, or a patient of its train/validation split) and "
                           "report on the rest; without this such images are refused")
    seen.add_argument("--allow-contaminated", action="store_true",
                      help="score such images anyway: the report, metrics.json and the "
                           "manifest entry are marked CONTAMINATED")
    p.set_defaults(func=_evaluate)
    return parser


def _split(args, reporter) -> int:
    from pathlib import Path

    from training.data import check_disjoint, load_dataset, split_dataset, write_manifest
    from training.errors import TrainingError

    ds = load_dataset(args.data, args.task, args.magnification, args.include_unreviewed)
    ds = split_dataset(ds, args.fractions, args.seed, args.strict, args.split_unit)
    data = Path(args.data).expanduser()
    out = Path(args.out) if args.out else (data / "split.csv" if data.is_dir()
                                           else data.with_name(data.stem + "-split.csv"))
    reporter.start("split", out=str(out), counts=ds.counts(), seed=args.seed)
    for w in ds.warnings:
        reporter.warning(w)
    for n in ds.notes:
        reporter.note(n)
    leaked = check_disjoint(ds) if args.split_unit == "patient" else []
    if leaked:  # cannot happen: groups are dealt whole
        raise TrainingError(f"internal error: patient {leaked[0]} is in two splits")
    write_manifest(out, ds)
    counts = ds.counts()
    for split in ("train", "val", "test"):
        c = counts.get(split, {})
        patients = {s.patient for s in ds.split(split) if s.patient}
        reporter.info(f"{split}: {sum(c.values())} images, {len(patients)} patients, "
                      f"{len(c)} classes")
    reporter.info(f"{out}: split manifest of {len(ds)} images")
    reporter.done(str(out), None)
    return 0


def _train(args, reporter) -> int:
    from training.train import run_train

    return run_train(args, reporter)


def _evaluate(args, reporter) -> int:
    from training.evaluate import run_evaluate

    return run_evaluate(args, reporter)


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "?"
    return f"{where}: {exc.strerror or exc}"


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def _watch_stdin() -> None:
    """Send ourselves SIGTERM (a clean, resumable stop) once the parent's pipe closes."""
    import os
    import threading

    def watch():
        # os.read on the raw descriptor: a blocked sys.stdin read would hold the buffer's
        # lock and abort the interpreter's shutdown when training ends normally.
        try:
            while os.read(0, 4096):
                pass
        except OSError:  # stdin is gone as surely as at end of file: the GUI went away
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "watch_stdin", False):
        _watch_stdin()
    reporter = Reporter(args.progress)
    old = None
    try:
        old = signal.signal(signal.SIGTERM, _sigterm)  # the GUI's cancel: stop like Ctrl-C
    except ValueError:  # not the main thread (tests running main in a thread)
        pass
    from training.finetune import Stopped

    threads = None
    try:
        if getattr(args, "threads", None):
            torch = heavy.torch()

            threads = torch.get_num_threads()
            torch.set_num_threads(max(1, args.threads))
        return int(args.func(args, reporter) or 0)
    except Stopped as exc:
        msg = (f"stopped after epoch {exc.epoch} (--stop-after); rerun the same command to "
               "resume")
        reporter.emit("stopped", reason=exc.reason, epoch=exc.epoch, resumable=True,
                      message=msg, exit_code=3)
        reporter.info(msg)
        return 3
    except (PvdeskError, OSError) as exc:  # OSError: a disk full, a folder not writable
        text = str(exc) if isinstance(exc, PvdeskError) else _os_error(exc)
        reporter.error(text, 2)
        print(f"{PROG}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        msg = "interrupted; rerun the same command to resume after the last finished epoch"
        reporter.emit("stopped", reason="interrupted", epoch=None, resumable=True,
                      message=msg, exit_code=130)
        print(f"{PROG}: {msg}", file=sys.stderr)
        return 130
    finally:
        reporter.close_bar()
        if threads is not None:
            torch = heavy.torch()

            torch.set_num_threads(threads)
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
