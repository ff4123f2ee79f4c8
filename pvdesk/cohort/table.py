"""The cohort table of a review project: one row per slide, most in need of a human first.

    entries = cohort_table(store)          # a ReviewStore holding many slides

Each entry is a slide's newest run (what ``pvdesk predict --store`` or the window recorded
last): its slide-level call by the rule of ``pvdesk predict``'s summary (malignant when at
least 10% of its tiles' arg-max classes are malignant), tiles, flagged tiles (the model's
top class below ``FLAG_CONFIDENCE``: it hesitates), and reviewed of total tiles. Order:
slides not yet fully reviewed before those that are; among them malignant calls first, then
the larger share of flagged tiles, then the lower share reviewed, then the path. Qt-free:
the window's cohort dock (pvdesk.ui.cohort_dock) shows these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pvdesk.predict.summary import MALIGNANT_SHARE
from pvdesk.review.types import model_label
from pvdesk.taxonomy import Taxonomy

FLAG_CONFIDENCE = 0.5


@dataclass(frozen=True)
class CohortEntry:
    slide_id: str
    path: str
    run_id: int
    model: str
    call: str | None  # "malignant", "benign" or None (the run's classes have no such groups)
    malignant_share: float | None
    tiles: int
    flagged: int
    reviewed: int

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path

    @property
    def untrained(self) -> bool:
        return self.model.endswith("(UNTRAINED)")

    @property
    def flagged_share(self) -> float:
        return self.flagged / self.tiles if self.tiles else 0.0

    @property
    def done(self) -> bool:
        return self.tiles > 0 and self.reviewed >= self.tiles

    def sort_key(self):
        return (self.done, self.call != "malignant", -self.flagged_share,
                self.reviewed / self.tiles if self.tiles else 1.0, self.path)


def cohort_table(store, flag_below: float = FLAG_CONFIDENCE) -> list[CohortEntry]:
    """The project's slides with their newest run, sorted by need of review."""
    with store._lock:
        con = store.con
        paths = dict(con.execute("SELECT slide_id, path FROM slides"))
        per_run: dict[tuple[str, int], dict[str, list[int]]] = {}
        for sid, run, predicted, n, flagged in con.execute(
                "SELECT t.slide_id, p.run_id, p.predicted, count(*), "
                "sum(p.confidence < ?) FROM predictions p JOIN tiles t USING(tile_id) "
                "GROUP BY t.slide_id, p.run_id, p.predicted", (flag_below,)):
            per_run.setdefault((sid, run), {})[predicted] = [n, flagged or 0]
        reviewed = {(sid, run): n for sid, run, n in con.execute(
            "SELECT t.slide_id, p.run_id, count(DISTINCT p.tile_id) FROM predictions p "
            "JOIN tiles t USING(tile_id) JOIN decisions d ON d.tile_id = p.tile_id "
            "WHERE d.status != 'unreviewed' GROUP BY t.slide_id, p.run_id")}
    newest: dict[str, int] = {}  # each slide's newest run, from the same scan
    for sid, run in per_run:
        newest[sid] = max(run, newest.get(sid, run))
    out = []
    for sid, run in newest.items():
        per_class = per_run[sid, run]
        tiles = sum(n for n, _ in per_class.values())
        info = store.run(run)
        tax = Taxonomy.of_run(info)  # the run's own classes and groups, as predict's summary
        share = call = None
        if tax.benign_malignant and tiles:
            share = sum(n for c, (n, _) in per_class.items()
                        if tax.group_of(c) == "malignant") / tiles
            call = "malignant" if share >= MALIGNANT_SHARE else "benign"
        out.append(CohortEntry(sid, paths.get(sid, sid), run,
                               model_label(info.bundle_name, info.bundle_version, info.trained),
                               call, share, tiles,
                               sum(f for _, f in per_class.values()),
                               reviewed.get((sid, run), 0)))
    return sorted(out, key=CohortEntry.sort_key)
