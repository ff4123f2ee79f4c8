"""Review, Edit and File additions to the main window's menus (part 2 of the app).

The review keys themselves are routed by ``ReviewController`` (only in review mode, never
into a text field); the menu lists them after a tab so they are discoverable, and
choosing an entry does the same as the key.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from pvdesk.taxonomy import NON_TISSUE, UNCERTAIN, Taxonomy
from pvdesk.ui.menus import _action as _act


def build_review_menus(window, command) -> dict[str, QAction]:
    """Add the actions; ``command(token)`` runs a review key (see pvdesk.review.session)."""
    acts: dict[str, QAction] = {}
    bar = window.menuBar()
    file_menu = window.file_menu
    before = window.actions_["label_image"]
    acts["export"] = _act(window, "&Export predictions…", "Ctrl+E",
                          tip="CSV (and GeoJSON for QuPath) with the reviewer's decisions")
    acts["project"] = _act(window, "Open or new review &project…",
                           tip="Keep the reviews of many slides in one .pvdb file")
    acts["per_slide"] = _act(window, "Use one review store per slide", checkable=True)
    acts["per_slide"].setChecked(True)
    for name in ("export", "project", "per_slide"):
        file_menu.insertAction(before, acts[name])
    file_menu.insertSeparator(before)

    edit = QMenu("&Edit", bar)
    bar.insertMenu(window.view_menu.menuAction(), edit)
    acts["undo"] = _act(window, "&Undo review action", QKeySequence.StandardKey.Undo)
    acts["redo"] = _act(window, "&Redo review action", ["Ctrl+Shift+Z", "Ctrl+Y"])
    edit.addAction(acts["undo"])
    edit.addAction(acts["redo"])

    review = QMenu("&Review", bar)
    bar.insertMenu(window.help_menu.menuAction(), review)
    window.review_menu = review
    acts["mode"] = _act(window, "Review &mode", "R", checkable=True,
                        tip="Route the review keys (1–9 in the run's class order, 0, U, Enter, "
                            "J/K, arrows) to the queue")
    review.addAction(acts["mode"])
    review.addSeparator()
    keyed = [("Confirm the prediction", "Enter", "enter"), ("Next tile", "J / ↓", "j"),
             ("Previous tile", "K / ↑", "k")]
    for text, key, token in keyed:
        a = QAction(f"{text}\t{key}", window)
        a.triggered.connect(lambda _=False, t=token: command(t))
        review.addAction(a)
    window.review_label_end = review.addSeparator()
    window.review_label_actions = []
    set_label_actions(window, Taxonomy.breakhis(), command)
    acts["clear_selection"] = QAction("Clear the selection\tEsc", window)
    review.addAction(acts["clear_selection"])
    return acts


def set_label_actions(window, tax: Taxonomy, command, label=None) -> None:
    """The Review menu's "Label as …" entries for the run's taxonomy: its classes in order
    with their keys (a class past the ninth has none: choosing the entry labels with
    ``label(name)``), then non-tissue (0) and uncertain (U)."""
    menu = window.review_menu
    for a in window.review_label_actions:
        menu.removeAction(a)
        a.deleteLater()
    window.review_label_actions = []
    for name in [*tax.names, NON_TISSUE, UNCERTAIN]:
        key, text, _ = tax.label_parts(name)
        a = QAction(f"Label as {text}\t{key}" if key else f"Label as {text}", window)
        if key:
            a.triggered.connect(lambda _=False, t=key.lower(): command(t))
        elif label is not None:
            a.triggered.connect(lambda _=False, n=name: label(n))
        window.review_label_actions.append(a)
    menu.insertActions(window.review_label_end, window.review_label_actions)
