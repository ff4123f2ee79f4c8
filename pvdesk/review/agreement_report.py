"""The agreement report of ``pvdesk review agreement``: report.md, agreement.json and one
confusion-matrix PNG per reader pair (matplotlib, Agg), written from
:func:`pvdesk.review.agreement_analysis.analyse`'s dict."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pvdesk.export.atomic import atomic_path, atomic_write, make_folder


def _f(v, digits: int = 3) -> str:
    return "undefined" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "undefined" if v is None else f"{100 * v:.1f}%"


def _ci(interval) -> str:
    if not interval:
        return ""
    if interval["ci"] is None:
        return f" ({interval['ci_note']})"
    lo, hi = interval["ci"]
    return f" (95% CI {_f(lo)}–{_f(hi)}, {interval['ci_note'].split(' over ')[-1]})"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "reviewer"


def confusion_png(pair: dict, path: Path) -> None:
    """A reader-vs-reader confusion matrix as a PNG (counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    conf = pair["confusion"]
    labels, m = conf["labels"], conf["matrix"]
    size = 2.5 + 0.55 * len(labels)
    fig = Figure(figsize=(size + 1.5, size), dpi=110)
    ax = fig.add_subplot()
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel(conf["columns"])
    ax.set_ylabel(conf["rows"])
    top = max((max(r) for r in m), default=0)
    for i, row in enumerate(m):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > top / 2 else "black")
    ax.set_title(f"{pair['a']} vs {pair['b']}: kappa {_f(pair['kappa'])}\n{pair['n_text']}",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def report_lines(r: dict, pngs: dict[tuple[str, str], str]) -> list[str]:
    lines = ["# Inter-reader agreement", "",
             f"Store: `{r['store']}`" + (f", run {r['run_id']}" if r["run_id"] else ""),
             f"Decisions analysed: each reader's **{r['decisions']}** decision per tile"
             + (" (the blinded reading; later changes are in the audit trail)"
                if r["decisions"] == "first" else ""),
             "Readers: " + ", ".join(f"{n} ({r['tiles_read'][n]} tiles)"
                                     for n in r["reviewers"]) + f" over {r['slides']} slide(s).",
             f"Intervals: {r['bootstrap']['resamples']} bootstrap resamples of slides (seed "
             f"{r['bootstrap']['seed']}), only with at least {r['bootstrap']['min_slides']} "
             "slides.", ""]
    c = r["consensus"]
    lines += ["## Consensus", "",
              f"{c['adjudicated']} adjudicated, {c['unanimous']} unanimous (two or more "
              f"readers, all agreeing), {c['single']} read by one reader only, "
              f"{c['disputed']} disputed (readers disagree; awaiting adjudication). Counted on "
              "the decisions as they stand.", ""]
    lines += ["## Reader pairs", "",
              "| readers | tiles | Cohen's kappa | percent agreement | weighted kappa |",
              "|---|---|---|---|---|"]
    for p in r["pairs"]:
        w = p.get("weighted")
        wtext = (f"{_f(w['kappa'])}{_ci(w['interval'])} on {w['n_text']}, order "
                 f"{' < '.join(w['order'])}" if w else "—")
        lines.append(f"| {p['a']} vs {p['b']} | {p['n_text']} | {_f(p['kappa'])}"
                     f"{_ci(p['kappa_interval'])} | {_pct(p['percent_agreement'])}"
                     f"{_ci(p['percent_interval'])} | {wtext} |")
    if not r["pairs"]:
        lines.append("| (fewer than two readers) | | | | |")
    for p in r["pairs"]:
        lines += ["", f"### {p['a']} vs {p['b']}", ""]
        if (p["a"], p["b"]) in pngs:
            lines += [f"![confusion]({pngs[(p['a'], p['b'])]})", ""]
        lines += ["| class | specific agreement | ratings |", "|---|---|---|"]
        for lab, v in p["per_class"].items():
            lines.append(f"| {lab} | {_f(v['specific_agreement'])} | {v['ratings']} |")
    f = r.get("fleiss")
    if f:
        lines += ["", f"## Fleiss' kappa ({len(f['reviewers'])} readers)", "",
                  f"kappa {_f(f['kappa'])}{_ci(f['interval'])} on {f['n_text']}; pairs of "
                  f"ratings that agree: {_pct(f['pairwise_agreement'])}.", "",
                  "| class | specific agreement | ratings |", "|---|---|---|"]
        for lab, v in f["per_class"].items():
            lines.append(f"| {lab} | {_f(v['specific_agreement'])} | {v['ratings']} |")
    lines += ["", "## Readers vs model runs", "",
              "| reader | run | tiles | Cohen's kappa | percent agreement |", "|---|---|---|---|---|"]
    for m in r["models"]:
        model = m["model"] + ("" if m["trained"] else " (UNTRAINED)")
        lines.append(f"| {m['reviewer']} | {m['run_id']}: {model} | {m['n_text']} | "
                     f"{_f(m['kappa'])}{_ci(m['interval'])} | {_pct(m['percent_agreement'])} |")
    return lines + [""]


def write_report(result: dict, out_dir) -> list[Path]:
    """Write report.md, agreement.json and the confusion PNGs into ``out_dir`` (made if
    missing); returns the files written."""
    out = make_folder(out_dir)
    written, pngs = [], {}
    for p in result["pairs"]:
        if p["n"]:
            name = f"confusion_{_safe(p['a'])}_vs_{_safe(p['b'])}.png"
            confusion_png(p, out / name)
            pngs[(p["a"], p["b"])] = name
            written.append(out / name)
    with atomic_write(out / "agreement.json") as fh:
        fh.write(json.dumps(result, indent=2, ensure_ascii=False))
    with atomic_write(out / "report.md") as fh:
        fh.write("\n".join(report_lines(result, pngs)))
    return [out / "report.md", out / "agreement.json", *written]
