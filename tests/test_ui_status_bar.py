"""The status bar never widens the window: at 1366 px, with every label at its longest, the
window keeps its width, what is stored and by whom stay whole, and the cursor position and
the run's speed give way (ending in "…", whole in their tooltips)."""

from __future__ import annotations

from ui_support import LAPTOP, show_window

from pvdesk.ui.status_bar import ElidedLabel


def test_long_status_texts_do_not_widen_the_window(qtbot, pvdesk_home):
    w = show_window(qtbot, LAPTOP)
    assert w.width() == LAPTOP[0]
    s, r = w.status, w.review
    r.store_label.setText("40/52 reviewed · 8 corrected · storing 12 actions… retrying")
    r.store_label.setMinimumWidth(r.store_label.sizeHint().width())  # as review_sync does
    r.team.label.setText("Reviewer: a-very-long-reviewer-name-here (adjudicator) · BLINDED")
    cursor = "x 123,456  y 99,999 px  (61,728.0, 49,999.5 µm)"
    s.cursor.setText(cursor)
    s.zoom.setText("Zoom 40.0x")
    s.mpp.setText("0.250 µm/px")
    s.run.show()
    s.run.label.setText("1234.5 tiles/s, ETA 1 h 12 min, 33 unreadable")
    qtbot.wait(100)
    assert w.width() == LAPTOP[0]  # it was 1,735 px before
    for label in (r.store_label, r.team.label):  # whole
        assert label.width() >= label.sizeHint().width(), label.text()
    assert s.cursor.width() < s.cursor.sizeHint().width()  # gave way
    assert s.cursor.toolTip() == cursor
    assert isinstance(s.run.label, ElidedLabel)


def test_an_elided_label_asks_for_its_width_and_shrinks_to_little(qapp):
    label = ElidedLabel(least=40, wants=300)
    label.setText("short")
    assert label.sizeHint().width() == 300  # a steady width while the text changes
    label.setText("x" * 200)
    assert label.sizeHint().width() > 300
    assert label.minimumSizeHint().width() == 40
