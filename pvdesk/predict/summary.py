"""Per-model tallies of a prediction run and the slide-level call, as text and JSON.

The slide-level call is a stated rule, not a diagnosis: a slide (or patch folder) is called
"malignant" when at least ``MALIGNANT_SHARE`` (10%) of its classified tissue tiles have a
malignant arg-max class, else "benign". That rule needs a taxonomy with benign/malignant
groups; for any other taxonomy the summary gives the class shares and says no slide-level
rule applies. Untrained bundles are flagged loudly everywhere.
"""

from __future__ import annotations

import numpy as np

from pvdesk.taxonomy import Taxonomy

MALIGNANT_SHARE = 0.10
UNTRAINED_WARNING = ("UNTRAINED MODEL: {name} has random weights or stands on a model that "
                     "has; its predictions, heatmaps and slide call are meaningless and for "
                     "testing only")


def call_rule(share: float = MALIGNANT_SHARE) -> str:
    return (f"malignant if >= {share:.0%} of the classified tissue tiles are predicted malignant "
            "(arg-max class in the malignant group), else benign")


NO_RULE = ("no slide-level rule applies: the model's taxonomy has no benign/malignant groups "
           "(the class shares above are the summary)")


class ModelTally:
    """Counts of one model's predictions over a slide, fed batch by batch."""

    def __init__(self, model: str, classes, trained: bool = True,
                 taxonomy: Taxonomy | None = None):
        self.model, self.classes, self.trained = model, list(classes), trained
        self.taxonomy = taxonomy or Taxonomy.for_classes(self.classes)
        self.per_class = dict.fromkeys(self.classes, 0)
        self.prob_sums = np.zeros(len(self.classes), dtype=np.float64)
        self.classified = 0
        self.unreadable = 0

    def add(self, probs: np.ndarray) -> None:
        """(N, C) probabilities; NaN rows are unreadable tiles."""
        p = np.asarray(probs, dtype=np.float64)
        ok = np.isfinite(p).all(axis=1)
        self.unreadable += int((~ok).sum())
        if ok.any():
            best = p[ok].argmax(axis=1)
            for i in best:
                self.per_class[self.classes[i]] += 1
            self.prob_sums += p[ok].sum(axis=0)
            self.classified += int(ok.sum())

    @property
    def per_group(self) -> dict[str, int]:
        """Tiles per group of the taxonomy (empty when it has no groups)."""
        out = dict.fromkeys(self.taxonomy.groups, 0)
        for c, n in self.per_class.items():
            g = self.taxonomy.group_of(c)
            if g is not None:
                out[g] += n
        return out

    @property
    def has_rule(self) -> bool:
        return self.taxonomy.benign_malignant

    def call(self, share: float = MALIGNANT_SHARE) -> str | None:
        if not self.classified or not self.has_rule:
            return None
        frac = self.per_group["malignant"] / self.classified
        return "malignant" if frac >= share else "benign"

    def to_dict(self, share: float = MALIGNANT_SHARE) -> dict:
        n = max(self.classified, 1)
        return {
            "model": self.model,
            "trained": self.trained,
            "classes": self.classes,
            "tiles_classified": self.classified,
            "tiles_unreadable": self.unreadable,
            "tiles_per_class": dict(self.per_class),
            "tiles_per_group": self.per_group,
            "malignant_share": (self.per_group["malignant"] / n
                                if self.classified and self.has_rule else None),
            "mean_probability": {c: float(s / n) for c, s in zip(self.classes, self.prob_sums,
                                                                   strict=True)},
            "slide_call": self.call(share),
            "slide_call_rule": call_rule(share) if self.has_rule else NO_RULE,
            "warning": None if self.trained else UNTRAINED_WARNING.format(name=self.model),
        }


def call_text(m: dict) -> str:
    """A model's slide call (a summary.json model entry) for a one-line report; a taxonomy
    without benign/malignant groups has no rule, and its class shares are given instead."""
    if m.get("slide_call_rule") != NO_RULE:
        return m["slide_call"] or "-"
    n = m["tiles_classified"] or 1
    shares = " ".join(f"{c} {k / n:.0%}" for c, k in m["tiles_per_class"].items())
    return f"no slide-level rule (class shares: {shares})"


def summary_text(info: dict) -> str:
    """The human summary.txt of one source from its summary.json dict."""
    lines = []
    for m in info["models"]:
        if m["warning"]:
            bar = "!" * 78
            lines += [bar, "!! " + m["warning"], bar, ""]
    lines += [f"source: {info['source']}", f"grid: {info['grid']}"]
    area = info.get("unreadable_area")
    if area:
        lines.append(f"unreadable area: {area['note']}")
    if info.get("tiles_unreadable"):
        lines.append(f"unreadable tiles: {info['tiles_unreadable']} of {info['tiles']} could not "
                     f"be read and are not classified (tile_status 'unreadable' in the CSV; "
                     f"e.g. {info['unreadable_examples'][0]})")
    lines.append(f"time: {info['seconds']:.1f} s ({info['tiles_per_s']:.1f} tiles/s)")
    for m in info["models"]:
        tag = "" if m["trained"] else "  [UNTRAINED]"
        total = m["tiles_classified"] + m["tiles_unreadable"]
        lines += ["", f"model {m['model']}{tag}: {m['tiles_classified']} of {total} tiles "
                      "classified" + (f", {m['tiles_unreadable']} unreadable"
                                      if m["tiles_unreadable"] else "")]
        width = max(len(c) for c in m["classes"])
        for c, n in m["tiles_per_class"].items():
            share = n / m["tiles_classified"] if m["tiles_classified"] else 0.0
            lines.append(f"  {c:<{width}}  {n:6d}  {share:6.1%}")
        g = m["tiles_per_group"]
        if g:
            lines.append("  " + ", ".join(f"{k} {v}" for k, v in g.items()))
        if m["slide_call_rule"] == NO_RULE:
            lines += [f"  slide call: none{tag}", f"  rule: {NO_RULE}"]
            continue
        call = m["slide_call"].upper() if m["slide_call"] else "none (no tile classified)"
        lines.append(f"  slide call: {call}{tag}")
        if m["tiles_unreadable"] and m["slide_call"]:
            lines.append(f"  caution: the call rests on {m['tiles_classified']} of {total} "
                         f"tiles; the {m['tiles_unreadable']} unreadable ones could change it")
        lines.append(f"  rule: {m['slide_call_rule']}")
    return "\n".join(lines) + "\n"
