"""Application entry points: `pvdesk PATH`, `pvdesk demo`, drag and drop, recent files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication
from ui_support import show_window

from pvdesk.paths import sample_slide
from pvdesk.ui import app as app_mod
from pvdesk.ui.main_window import MainWindow

pytestmark = pytest.mark.usefixtures("pvdesk_home")


def test_cli_routes_to_gui_and_knows_demo(monkeypatch):
    from pvdesk import cli

    seen = []
    monkeypatch.setattr(app_mod, "run_app", lambda argv, demo=False: seen.append((argv, demo)) or 0)
    assert cli.main(["some/slide.svs"]) == 0
    assert seen == [(["some/slide.svs"], False)]
    assert cli.main(["demo"]) == 0
    assert seen[-1] == ([], True)
    assert app_mod.parse_args(["x.svs"]).path == "x.svs"
    assert app_mod.parse_args([]).path is None


def test_the_window_starts_as_the_reviewer_named(qtbot, monkeypatch, capsys):
    from pvdesk import cli

    seen = []
    monkeypatch.setattr(app_mod, "run_app", lambda argv, demo=False: seen.append(argv) or 0)
    assert cli.main(["--reviewer", "ana", "x.svs"]) == 0
    assert seen == [["--reviewer", "ana", "x.svs"]]
    args = app_mod.parse_args(seen[0])
    assert (args.reviewer, args.path) == ("ana", "x.svs")
    monkeypatch.undo()
    assert app_mod.run_app(["--reviewer", "   "]) == 2
    assert "is not a reviewer name" in capsys.readouterr().err
    w = app_mod.make_window(None, reviewer="ana")
    qtbot.addWidget(w)
    assert w.settings.reviewer == "ana" and w.review.team.reviewer == "ana"
    assert "Reviewer switched" in w.status.currentMessage()


def test_demo_opens_sample_and_starts_demo_bundles(qtbot, monkeypatch):
    requests = []
    monkeypatch.setattr(MainWindow, "start_run", lambda self, req: requests.append(req) or True)
    w = app_mod.make_window(None, demo=True)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: bool(requests), timeout=20000)
    assert Path(w.opened.path) == sample_slide()
    assert requests[0].bundles == list(app_mod.DEMO_BUNDLES)


def test_drop_and_recent_files(qtbot):
    w = show_window(qtbot, None, exposed=False)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_slide()))])
    ev = QDropEvent(QPoint(50, 50).toPointF(), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    w.dropEvent(ev)
    qtbot.waitUntil(lambda: w.source is not None, timeout=20000)
    actions = w.recent_menu.actions()
    assert [a.text() for a in actions] == [str(sample_slide().resolve())]

    w.view.clear()
    w.source = None
    actions[0].trigger()
    qtbot.waitUntil(lambda: w.source is not None, timeout=20000)
    w.close()


def test_closing_while_opening_is_clean(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.open_path(sample_slide())
    w.close()  # waits for the opener thread; the late result is dropped
    QApplication.processEvents()
    assert w.source is None
