"""Evaluation results a model bundle carries, read without Qt (for the metrics view).

``training`` writes, in the bundle folder: ``metrics.json`` (+ report.md, confusion.png and,
when it trained the bundle, curves.png) for the held-out split at training time, and one
folder per later ``evaluate`` under ``evaluations/<split>-<hash>/`` with the same files. The
manifest's ``provenance.metrics`` (and ``provenance.evaluations``) hold summaries only:
accuracy, balanced accuracy, macro/weighted F1, ECE, n, split. :func:`bundle_reports` lists
every report found, full ones first; a bundle with none gives an empty list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

METRICS_NAME = "metrics.json"
CONFUSION_NAME = "confusion.png"
CURVES_NAME = "curves.png"
REPORT_NAME = "report.md"


@dataclass
class Report:
    title: str
    metrics: dict  # full (per_class, confusion, ...) or a summary only
    context: dict = field(default_factory=dict)
    folder: Path | None = None  # where the files are; None for a manifest summary
    full: bool = True

    def file(self, name: str) -> Path | None:
        p = self.folder / name if self.folder is not None else None
        return p if p is not None and p.is_file() else None

    @property
    def confusion_png(self) -> Path | None:
        return self.file(CONFUSION_NAME)

    @property
    def curves_png(self) -> Path | None:
        return self.file(CURVES_NAME)

    @property
    def report_md(self) -> Path | None:
        return self.file(REPORT_NAME)

    def summary_rows(self) -> list[tuple[str, float | None]]:
        m = self.metrics
        rows = [("Accuracy", m.get("accuracy")), ("Balanced accuracy", m.get("balanced_accuracy")),
                ("Macro F1", m.get("macro_f1")), ("Weighted F1", m.get("weighted_f1")),
                ("Expected calibration error", m.get("ece"))]
        b = m.get("binary")
        bin_acc = b.get("accuracy") if isinstance(b, dict) else m.get("binary_accuracy")
        rows.append(("Benign/malignant accuracy", bin_acc))
        pl = m.get("patient_level")
        rows.append(("Patient-level accuracy", pl.get("accuracy") if isinstance(pl, dict)
                     else m.get("patient_accuracy")))
        return [(k, v) for k, v in rows if v is not None]

    def counts(self) -> dict[str, str]:
        """Summary row name -> its denominator, "31 of 40 images", where the report has it."""
        m = self.metrics
        out = {}
        if m.get("correct") is not None and m.get("n"):
            out["Accuracy"] = f"{m['correct']} of {m['n']} images"
        b = m.get("binary")
        if isinstance(b, dict) and b.get("correct") is not None and b.get("n"):
            out["Benign/malignant accuracy"] = f"{b['correct']} of {b['n']} images"
        pl = m.get("patient_level")
        if isinstance(pl, dict) and pl.get("correct") is not None and pl.get("n_patients"):
            out["Patient-level accuracy"] = f"{pl['correct']} of {pl['n_patients']} patients"
        return out

    def no_interval(self) -> str | None:
        """Why the report gives no 95% interval (too few patients, bootstrap off), if so."""
        boot = self.metrics.get("bootstrap")
        why = boot.get("no_interval") if isinstance(boot, dict) else None
        return why or self.metrics.get("no_interval") or None

    def class_rows(self) -> list[tuple[str, float | None, float | None, float | None, int | None]]:
        """(name, precision, recall, F1, support) per class, then the macro and weighted rows."""
        m = self.metrics
        per = m.get("per_class")
        if not isinstance(per, dict):
            return []
        rows = [(c, r.get("precision"), r.get("recall"), r.get("f1"), r.get("support"))
                for c, r in per.items() if isinstance(r, dict)]
        for avg in ("macro", "weighted"):
            if m.get(f"{avg}_f1") is not None:
                rows.append((f"{avg} average", m.get(f"{avg}_precision"),
                             m.get(f"{avg}_recall"), m.get(f"{avg}_f1"), m.get("n")))
        return rows


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _folder_report(folder: Path, title: str) -> Report | None:
    data = _read_json(folder / METRICS_NAME)
    if data is None or not isinstance(data.get("metrics"), dict):
        return None
    return Report(str(data.get("title") or title), data["metrics"],
                  dict(data.get("context") or {}), folder, True)


def bundle_reports(bundle) -> list[Report]:
    """Every evaluation report of ``bundle`` (a Bundle, or a bundle folder)."""
    if isinstance(bundle, (str, Path)):
        folder = Path(bundle).expanduser()
        manifest = _read_json(folder / "manifest.json") or {}
    else:
        folder = getattr(bundle, "path", None)
        fresh = _read_json(folder / "manifest.json") if folder is not None else None
        manifest = fresh or getattr(bundle, "manifest", None) or {}
    name = manifest.get("name") or (folder.name if folder is not None else "bundle")
    out: list[Report] = []
    if folder is not None and folder.is_dir():
        own = _folder_report(folder, f"{name}: held-out split")
        if own is not None:
            out.append(own)
        ev_root = folder / "evaluations"
        if ev_root.is_dir():
            for sub in sorted(p for p in ev_root.iterdir() if p.is_dir()):
                rep = _folder_report(sub, f"{name}: {sub.name}")
                if rep is not None:
                    out.append(rep)
    prov = manifest.get("provenance") or {}
    if not out and isinstance(prov.get("metrics"), dict) and prov["metrics"]:
        out.append(Report(f"{name}: {prov['metrics'].get('split', 'held-out')} split "
                          "(summary in the manifest)", prov["metrics"], {}, None, False))
    if not any(r.full for r in out):
        for key, summ in sorted((prov.get("evaluations") or {}).items()):
            if isinstance(summ, dict):
                out.append(Report(f"{name}: {key} (summary in the manifest)", summ, {}, None,
                                  False))
    return out
