"""What team review changes in the review dock: blinded reading (no prediction or
confidence columns, no "Predicted" filter, no Confirm button, the blinded queue orders) and
the adjudicator's queue (a "Disputed" status filter and each reader's label).

Widgets only: the state comes from :class:`pvdesk.app.team.TeamState`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from pvdesk.app.team import TeamState
from pvdesk.ui.review_dock import HINT_ON, ORDER_TIPS, ORDERS, STATUS_FILTERS, key_range
from pvdesk.ui.review_queue import MODEL_COLUMNS, READERS

HINT_BLIND = ("<b>Blinded reading.</b> The model's prediction, confidence and heatmap and "
              "other reviewers' labels are hidden. <b>Keys:</b> {keys} · 0 non-tissue · "
              "U uncertain · J/K or arrows next/previous · Ctrl+Z / Ctrl+Shift+Z undo/redo. "
              "Your first label on a tile is the one analysed; later changes are audited.")
HINT_ADJUDICATE = ("<b>Adjudicating.</b> <i>Disputed</i> lists the tiles where readers "
                   "disagree, with each reader's label. {keys} / 0 / U record the consensus "
                   "label · J/K next/previous · Ctrl+Z undo.")
BLIND_ORDER_ITEMS = (("Random (the project's seed)", "random"),
                     ("Spatial: row by row across the slide", "spatial"))
DISPUTED = ("Disputed (readers disagree)", "disputed")
MODEL_STATUSES = ("confirmed", "corrected")


def _fill_orders(combo, items, tips, current) -> None:
    combo.blockSignals(True)
    combo.clear()
    for text, value in items:
        combo.addItem(text, value)
        if value in tips:
            combo.setItemData(combo.count() - 1, tips[value], Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    combo.blockSignals(False)


def _status_items(combo, blinded: bool) -> None:
    """Blinded: no "Confirmed"/"Corrected" status filter (whether a reader's label matches
    the model would tell its prediction); back in their places otherwise."""
    combo.blockSignals(True)
    for value in MODEL_STATUSES:
        at = combo.findData(value)
        if blinded and at >= 0:
            if combo.currentIndex() == at:
                combo.setCurrentIndex(0)
            combo.removeItem(at)
        elif not blinded and at < 0:
            i = [v for _, v in STATUS_FILTERS].index(value)
            combo.insertItem(i, *STATUS_FILTERS[i])
    combo.blockSignals(False)


def apply_to_dock(dock, state: TeamState | None) -> None:
    """Show ``state`` in the dock (None: a single reviewer, nothing hidden). Signals are
    blocked: the caller applies ``dock.filters()`` to the session."""
    blinded = bool(state and state.blinded)
    adjudicating = bool(state and state.adjudicator)
    dock.model.set_team(blinded, state.readers if adjudicating else None)
    for col in MODEL_COLUMNS:
        dock.table.setColumnHidden(col, blinded)
    dock.table.setColumnHidden(READERS, not adjudicating)
    dock.filter_form.setRowVisible(dock.klass, not blinded)
    if blinded:
        dock.klass.blockSignals(True)
        dock.klass.setCurrentIndex(0)  # filtering by prediction would show it
        dock.klass.blockSignals(False)
    blind_now = dock.order.findData("random") >= 0
    if blinded and not blind_now:
        _fill_orders(dock.order, BLIND_ORDER_ITEMS, {}, state.queue_order)
    elif blinded:
        dock.order.blockSignals(True)
        dock.order.setCurrentIndex(max(0, dock.order.findData(state.queue_order)))
        dock.order.blockSignals(False)
    elif blind_now or dock.order.count() == 0:
        _fill_orders(dock.order, ORDERS, ORDER_TIPS, "entropy")
    _status_items(dock.status, blinded)
    dock.team_seed = state.queue_seed if blinded else None
    dock.blind_reader = state.reviewer if blinded else None
    dock.confirm.setVisible(not blinded)
    dock.disputed = set(state.disputed or ()) if adjudicating else None
    at = dock.status.findData(DISPUTED[1])
    dock.status.blockSignals(True)
    if adjudicating and at < 0:
        dock.status.addItem(*DISPUTED)
        dock.status.setCurrentIndex(dock.status.count() - 1)  # the adjudicator's queue
    elif not adjudicating and at >= 0:
        if dock.status.currentIndex() == at:
            dock.status.setCurrentIndex(0)
        dock.status.removeItem(at)
    dock.status.blockSignals(False)
    keys = key_range(dock.taxonomy)  # the run's keys (1-8 for BreakHis)
    dock.hint_on = (HINT_BLIND.format(keys=keys) if blinded
                    else HINT_ADJUDICATE.format(keys=keys.split(" ")[0]) if adjudicating
                    else HINT_ON)
    dock.set_mode(dock.mode.isChecked())

