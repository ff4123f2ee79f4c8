"""Evaluation files: metrics.json, report.md, predictions.csv, confusion.png and (when
trained here) curves.png.

Every file is written atomically, metrics.json last, so a folder with metrics.json holds a
complete report. report.md shows the same numbers as metrics.json (4 decimals), each with
its denominator (images, patients) and, where it varies, its 95% interval or the reason
there is none. predictions.csv holds one row per image (image, region, patient, true,
predicted, a probability per class), so every figure can be recomputed from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pvdesk.export.atomic import atomic_write

METRICS_NAME = "metrics.json"
REPORT_NAME = "report.md"
CONFUSION_NAME = "confusion.png"
CURVES_NAME = "curves.png"
PREDICTIONS_NAME = "predictions.csv"


def fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _ci(m: dict, key: str) -> str:
    boot = m.get("bootstrap", {})
    ci = boot.get("ci95", {}).get(key)
    if ci:
        return f" (95% CI {fmt(ci[0])}–{fmt(ci[1])}, bootstrap over {boot.get('unit', 'image')}s)"
    return " (no interval, see below)" if boot.get("no_interval") else ""


def _of(correct, n, unit: str = "images") -> str:
    return f" ({correct} of {n} {unit})" if correct is not None and n else ""


def _save_png(fig, path: Path) -> None:
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")


def plot_confusion(m: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cm = np.asarray(m["confusion"], dtype=float)
    classes = m["classes"]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(n), [c.replace("_", " ") for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(n), [c.replace("_", " ") for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    _save_png(fig, path)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    # both losses are plain cross-entropy (no label smoothing), so the curves compare
    for ax, key, name in ((a, "loss", "cross-entropy loss"), (b, "acc", "accuracy")):
        ax.plot(ep, [h.get(f"train_{key}") for h in history], marker=".", label="train")
        if any(h.get(f"val_{key}") is not None for h in history):
            ax.plot(ep, [h.get(f"val_{key}") for h in history], marker=".", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    _save_png(fig, path)
    plt.close(fig)


def render_markdown(m: dict, title: str, context: dict) -> str:
    lines = [f"# {title}", ""]
    for k, v in context.items():
        lines.append(f"- {k}: {v}")
    boot = m["bootstrap"]
    lines += ["", "## Image level", "",
              f"- images: {m['n']}",
              f"- accuracy: {fmt(m['accuracy'])}{_of(m.get('correct'), m['n'])}"
              f"{_ci(m, 'accuracy')}",
              f"- balanced accuracy: {fmt(m['balanced_accuracy'])}"
              f"{_ci(m, 'balanced_accuracy')}",
              f"- macro F1: {fmt(m['macro_f1'])}{_ci(m, 'macro_f1')}",
              f"- weighted F1: {fmt(m['weighted_f1'])}",
              f"- expected calibration error: {fmt(m['ece'])} (over {m['n']} images)",
              (f"- intervals: {boot['no_interval']}" if boot.get("no_interval") else
               f"- bootstrap: {boot['n']} resamples of {boot.get('groups', '?')} "
               f"{boot['unit']}s"),
              f"- averages: {m['averages']}" if m.get("averages") else "",
              "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c, r in m["per_class"].items():
        lines.append(f"| {c} | {fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['f1'])} "
                     f"| {r['support']} |")
    for avg in ("macro", "weighted"):
        lines.append(f"| {avg} avg | {fmt(m[f'{avg}_precision'])} | {fmt(m[f'{avg}_recall'])} "
                     f"| {fmt(m[f'{avg}_f1'])} | {m['n']} |")
    b = m.get("binary")
    if b:
        lines += ["", "## Benign / malignant roll-up", "",
                  f"- accuracy: {fmt(b['accuracy'])}{_of(b.get('correct'), b.get('n'))}",
                  f"- balanced accuracy: {fmt(b['balanced_accuracy'])}",
                  f"- macro F1: {fmt(b['macro_f1'])}",
                  f"- malignant AUC: {fmt(b.get('malignant_auc'))}"]
    pl = m.get("patient_level")
    if pl:
        lines += ["", "## Patient level", "", f"- patients: {pl['n_patients']}",
                  f"- accuracy: {fmt(pl['accuracy'])}"
                  f"{_of(pl.get('correct'), pl['n_patients'], 'patients')}"]
        if "binary_accuracy" in pl:
            lines.append(f"- benign/malignant accuracy: {fmt(pl['binary_accuracy'])}")
    lines += ["", "## Figures", "", f"![confusion matrix]({CONFUSION_NAME})"]
    if context.get("curves"):
        lines.append(f"![training curves]({CURVES_NAME})")
    return "\n".join(lines) + "\n"


def write_predictions(path: Path, samples, classes: list[str], probs) -> Path:
    """predictions.csv: image, x, y, w, h, patient, true, predicted, p_<class> per class."""
    import csv

    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    with atomic_write(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "x", "y", "w", "h", "patient", "true", "predicted",
                    *(f"p_{c}" for c in classes)])
        for s, p in zip(samples, probs, strict=True):
            region = list(s.region) if s.region else ["", "", "", ""]
            w.writerow([s.path, *region, s.patient or "", s.label,
                        classes[int(p.argmax())], *(repr(float(v)) for v in p)])
    return path


def write_report(folder: str | Path, metrics: dict, title: str, context: dict,
                 history: list[dict] | None = None, samples=None, probs=None) -> Path:
    """Write the report files into ``folder`` (created); returns the metrics.json path.
    With ``samples`` and their ``probs``, also predictions.csv."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if samples is not None and probs is not None:
        write_predictions(folder / PREDICTIONS_NAME, samples, metrics["classes"], probs)
    plot_confusion(metrics, folder / CONFUSION_NAME, title)
    ctx = dict(context)
    if history:
        plot_curves(history, folder / CURVES_NAME, title)
        ctx["curves"] = CURVES_NAME
    with atomic_write(folder / REPORT_NAME) as fh:
        fh.write(render_markdown(metrics, title, ctx))
    out = {"title": title, "context": ctx, "metrics": metrics}
    if history:
        out["history"] = history
    with atomic_write(folder / METRICS_NAME) as fh:
        json.dump(out, fh, indent=2, allow_nan=False)
        fh.write("\n")
    return folder / METRICS_NAME
