"""The team part of an import: each reviewer's label and the consensus, read back from a
CSV's team columns (``consensus_label``, ``consensus_source``, ``label_by:<reviewer>``) or
the same keys in a GeoJSON feature's metadata. Shared by :mod:`pvdesk.export.csv_import`
and :mod:`pvdesk.export.geojson_import`, so both read a team the same way.

- A ``label_by:<reviewer>`` cell becomes that reviewer's decision on the tile, written
  through the store's import path (``ReviewStore.record_imported``: audited as "import",
  not undoable): *confirmed* when the label is the row's predicted class, else *corrected*.
  The reviewer's current decision is what the file has; an existing different decision of
  that reviewer is replaced (the audit trail keeps it), an equal one is left alone.
- A cell carries no time. The row's own reviewer (the ``reviewer`` column) keeps the row's
  ``reviewed_at``; any other reviewer's cell is recorded at that time too (in an export of
  everyone's latest decisions, the default, that is the tile's latest decision, so theirs was
  not later), or at the import's time when the row has none; the audit comment says so.
- Roles are not in the file; consensus_source tells them. A reviewer new to the importing
  store becomes an adjudicator when every tile they labelled is "adjudicated" with their
  label as the consensus and they are needed to explain one (fewest adjudicators that
  explain every adjudicated tile, most tiles first); every other new name, including a
  column with no labels, joins as a reader. Reviewers the store already has keep their
  role; an adjudicated tile their roles do not explain is reported in the notes.
- Refused (ExportError naming the file and the line or feature): more than
  MAX_REVIEWERS reviewer names, a reviewer name that is not one, an unknown label, an unknown consensus source, two different labels of one reviewer
  for one tile, a review_label that differs from the row reviewer's own label_by cell, and an
  "adjudicated" consensus label that no reviewer of the row gave.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pvdesk.errors import StoreError
from pvdesk.export import ExportError
from pvdesk.export.csv import CONSENSUS_LABEL, CONSENSUS_SOURCE, LABEL_BY
from pvdesk.review.team import ADJUDICATED, ADJUDICATOR, READER, SINGLE, UNANIMOUS, check_reviewer
from pvdesk.review.types import CONFIRMED, CORRECTED, REVIEW_LABELS
from pvdesk.taxonomy import GROUPS

DISPUTED = "disputed"
SOURCES = (ADJUDICATED, UNANIMOUS, SINGLE, DISPUTED)
MAX_REVIEWERS = 1000  # a team, not a crowd: each new name is an audited role row


def is_team_key(key: str) -> bool:
    return key in (CONSENSUS_LABEL, CONSENSUS_SOURCE) or key.startswith(LABEL_BY)


def team_part(cells: Mapping) -> dict[str, str]:
    """The team cells of a CSV row or a feature's metadata ({key: text}, empty as "")."""
    return {k: "" if v is None else str(v) for k, v in cells.items() if is_team_key(str(k))}


def reviewer_of(key: str, where) -> str:
    """The reviewer named by a ``label_by:<reviewer>`` key, checked as the store checks names."""
    name = key[len(LABEL_BY):]
    try:
        ok = check_reviewer(name, where)
    except StoreError as exc:
        raise ExportError(f"{exc} in column {key[:80]!r}") from None
    if ok != name:
        raise ExportError(f"{where}: reviewer name {name[:40]!r} in column {key[:80]!r} has "
                          "spaces around it")
    return name


def label_check(classes) -> Callable[[str], bool]:
    """Whether a label is one a reviewer may give in a run of ``classes`` (as the
    single-reviewer import allows: the review labels, the groups and the run's classes)."""
    allowed = set(REVIEW_LABELS) | set(GROUPS) | set(classes)
    return allowed.__contains__


def check_cells(cells: Mapping[str, str], allowed: Callable[[str], bool], where) -> None:
    """A row's team cells, checked before anything is written (ExportError at ``where``)."""
    for key, value in cells.items():
        if key.startswith(LABEL_BY):
            reviewer_of(key, where)
            if value and not allowed(value):
                raise ExportError(f"{where}: {key[:80]}: unknown label {value[:40]!r}")
    source = cells.get(CONSENSUS_SOURCE, "")
    if source not in ("", *SOURCES):
        raise ExportError(f"{where}: unknown consensus_source {source[:40]!r} (one of "
                          f"{', '.join(SOURCES)}, or empty)")
    label = cells.get(CONSENSUS_LABEL, "")
    if label and not allowed(label):
        raise ExportError(f"{where}: unknown consensus_label {label[:40]!r}")
    if source in (ADJUDICATED, UNANIMOUS, SINGLE) and not label:
        raise ExportError(f"{where}: consensus_source {source!r} without a consensus_label")


@dataclass
class TeamImport:
    """Collects the team cells of an import, tile by tile, then gives the decisions and
    roles to write (see the module's doc)."""

    names: set[str] = field(default_factory=set)
    cells: dict[tuple[int, str], tuple] = field(default_factory=dict)  # (tile, name) -> decision
    labels: dict[str, dict[int, str]] = field(default_factory=dict)  # name -> {tile: label}
    adjudicated: dict[int, tuple[str, str]] = field(default_factory=dict)  # tile -> (label, where)
    plain: set[int] = field(default_factory=set)  # tiles with another consensus source
    seen: dict[tuple[int, str], str] = field(default_factory=dict)  # where a cell was read

    def add(self, tile: int, run: int, predicted: str | None, cells: Mapping[str, str],
            row_reviewer: str | None, row_label: str | None, row_at: str | None,
            where: str) -> None:
        """One row (or feature) of ``tile`` in ``run``: its team cells (checked already
        with :func:`check_cells`) and its review columns' reviewer, label and time."""
        given = set()
        for key, value in cells.items():
            if not key.startswith(LABEL_BY):
                continue
            name = reviewer_of(key, where)
            self.names.add(name)
            if len(self.names) > MAX_REVIEWERS:
                raise ExportError(f"{where}: more than {MAX_REVIEWERS} reviewers (label_by "
                                  "names); not a team export")
            if not value:
                continue
            given.add(value)
            old = self.labels.setdefault(name, {}).get(tile)
            if old is not None and old != value:
                raise ExportError(f"{where}: {key[:80]} is {value[:40]!r}, but "
                                  f"{self.seen[(tile, name)]} gave {old!r} for the same tile")
            self.labels[name][tile] = value
            self.seen.setdefault((tile, name), where)
            if name == row_reviewer:
                if value != row_label:
                    raise ExportError(f"{where}: {key[:80]} is {value[:40]!r} but the "
                                      f"review_label of reviewer {name[:40]!r} is "
                                      f"{str(row_label)[:40]!r}")
                continue  # the review columns carry this decision, with its time
            if (tile, name) not in self.cells:
                status = CONFIRMED if value == predicted else CORRECTED
                self.cells[(tile, name)] = (tile, run, status, value, name, row_at or None,
                                            False)
        if row_reviewer and row_label:
            self.labels.setdefault(row_reviewer, {}).setdefault(tile, row_label)
            self.seen.setdefault((tile, row_reviewer), where)
            given.add(row_label)
        source = cells.get(CONSENSUS_SOURCE, "")
        if source == ADJUDICATED:
            label = cells.get(CONSENSUS_LABEL, "")
            if label not in given:
                raise ExportError(f"{where}: consensus_label {label[:40]!r} is adjudicated, "
                                  "but no reviewer of the row gave it")
            self.adjudicated.setdefault(tile, (label, where))
        elif source:
            self.plain.add(tile)

    def decisions(self) -> list[tuple]:
        """Tuples for ``ReviewStore.record_imported`` (their time is a bound, not exact)."""
        return list(self.cells.values())

    def roles(self, known: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """({name: role} for the names new to a store whose roles are ``known``, notes)."""
        explained = {t for t, (lab, _) in self.adjudicated.items()
                     if any(known.get(n) == ADJUDICATOR and self.labels.get(n, {}).get(t) == lab
                            for n in self.labels)}
        candidates = []
        for name in self.names | set(self.labels):
            tiles = self.labels.get(name, {})
            if name in known or not tiles:
                continue
            if all(t in self.adjudicated and self.adjudicated[t][0] == lab
                   for t, lab in tiles.items()):
                candidates.append(name)
        adjudicators = set()
        for name in sorted(candidates, key=lambda n: (-len(self.labels[n]), n)):
            if set(self.labels[name]) - explained:
                adjudicators.add(name)
                explained |= set(self.labels[name])
        roles = {n: ADJUDICATOR if n in adjudicators else READER
                 for n in sorted(self.names | set(self.labels)) if n not in known}
        notes = []
        left = [t for t in self.adjudicated if t not in explained]
        if left:
            first = self.adjudicated[left[0]][1]
            notes.append(f"{len(left)} tiles adjudicated in the file have no adjudicator with "
                         f"that label among this store's roles (first: {first}); their "
                         "consensus here follows this store's roles")
        return roles, notes

    def apply(self, store, fname: str, row_decisions: list[tuple]) -> dict:
        """Write, inside the caller's transaction: roles of new reviewers, then the rows'
        own decisions, then the other reviewers' label_by decisions. Returns counts:
        decisions (the rows'), team_decisions, roles ({name: role} set), notes."""
        roles, notes = self.roles(store.roles())
        for name, role in roles.items():
            store.set_role(name, role)
        by = f"by {store.reviewer}"
        store.record_imported(row_decisions, comment=f"imported from {fname} {by}")
        team = self.decisions()
        store.record_imported(team, comment=f"imported from {fname} {by} (label_by column: "
                              "time unknown, recorded at the row's reviewed_at)")
        return {"decisions": len(row_decisions), "team_decisions": len(team),
                "roles": roles, "notes": notes}


def team_summary(r: dict) -> list[str]:
    """Lines saying what an import did with team cells (none when there were none)."""
    lines = []
    if r.get("team_decisions"):
        lines.append(f"team: {r['team_decisions']} labels of other reviewers (label_by)")
    if r.get("roles"):
        lines.append("new reviewers: " + ", ".join(f"{n} ({role})"
                                                   for n, role in r["roles"].items()))
    return lines
