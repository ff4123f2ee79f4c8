"""Review keys follow the keyboard focus: they act from whichever widget of the window has
it (the slide view, the queue table), never while the reviewer types in a text field, and
the window's key handling does not run Python for the events of every object in the app."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication
from test_ui_review import acked, env, open_window, run_and_wait  # noqa: F401  (env: fixture)


def _reviewed(store, run_id) -> int:
    return store.con.execute("SELECT count(*) FROM decisions WHERE run_id=? AND status!="
                             "'unreviewed'", (run_id,)).fetchone()[0]


def test_review_keys_follow_the_focus(qtbot, env):  # noqa: F811
    slide, _ = env
    w = open_window(qtbot, slide)
    run_and_wait(qtbot, w)
    r, s = w.review, w.review.session
    store, run = s.store, s.run_id
    w.activateWindow()
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_R)
    assert r.mode

    # from the queue table: 1 labels the current tile adenosis, and the queue moves on
    table = r.dock.table
    table.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is table)
    first = s.current
    qtbot.keyClick(table, Qt.Key.Key_1)
    acked(qtbot, s)
    assert store.decision(first.tile_id).label == "adenosis"
    assert s.current.tile_id != first.tile_id

    # typing digits in the patient field is text, not review keys
    before = _reviewed(store, run)
    field = r.dock.patient
    field.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is field)
    qtbot.keyClicks(field, "P7")
    assert field.text().endswith("P7")
    acked(qtbot, s)
    assert _reviewed(store, run) == before

    # back on the view: Enter confirms there
    w.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.view)
    cur = s.current
    qtbot.keyClick(w.view, Qt.Key.Key_Return)
    acked(qtbot, s)
    assert store.decision(cur.tile_id).status == "confirmed"
    assert _reviewed(store, run) == before + 1


def test_the_review_filter_sees_only_the_focused_widget(qtbot, env):  # noqa: F811
    """An application-wide filter would see every event of every object (timers, paints of
    every widget, queued calls): each a call into Python that must take the GIL."""
    slide, _ = env
    w = open_window(qtbot, slide)
    w.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.view)
    seen: list = []
    original = w.review.eventFilter

    def spy(obj, event):
        seen.append(obj)
        return original(obj, event)

    w.review.eventFilter = spy  # PySide calls an instance's own override
    try:
        w.status.run.bar.update()  # events of other objects: a repaint of the status bar ...
        w.review.dock.table.viewport().update()
        QApplication.sendEvent(w.metadata, QEvent(QEvent.Type.User))  # ... a plain event
        qtbot.wait(50)
        w.view.update()
        qtbot.wait(50)
    finally:
        del w.review.eventFilter
    assert seen, "the focused view's own events reach the filter"
    assert {id(o) for o in seen} == {id(w.view)}
