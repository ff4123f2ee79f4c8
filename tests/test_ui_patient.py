"""The slide's patient in the window: typed in the review dock, stored (audited), shown again
on reopening, refused with a message when it is not a study code, exported in the CSV."""

from __future__ import annotations

from PySide6.QtCore import Qt
from test_ui_review import SHOTS, env, open_window, run_and_wait  # noqa: F401  (env: fixture)

from pvdesk.export.csv import read_predictions_csv, write_predictions_csv


def _type(qtbot, w, text: str) -> None:
    field = w.review.dock.patient
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, text)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def test_patient_is_set_in_the_dock_kept_and_exported(qtbot, env, tmp_path):  # noqa: F811
    slide, warnings = env
    w = open_window(qtbot, slide)
    run_and_wait(qtbot, w)
    store = w.review.session.store
    slide_id = w.review.ctx.slide_id
    _type(qtbot, w, "P-007")
    assert store.patients() == {slide_id: "P-007"}
    _type(qtbot, w, "Smith, John")  # a name, not a code: refused, the stored code stays
    assert "Patient not stored" in w.status.currentMessage()
    assert w.review.dock.patient.text() == "P-007"
    assert store.patients() == {slide_id: "P-007"}
    path = store.path
    w.close()

    w2 = open_window(qtbot, slide)
    qtbot.waitUntil(lambda: w2.review.dock.patient.text() == "P-007", timeout=20000)
    out = tmp_path / "e.csv"
    write_predictions_csv(w2.review.session.store, out)
    assert {r["patient"] for r in read_predictions_csv(out).rows} == {"P-007"}
    assert w2.review.session.store.path == path
    w2.resize(1366, 768)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w2.grab().save(str(SHOTS / "patient-1366x768.png"))
    assert not warnings
