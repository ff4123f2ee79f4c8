"""The main window's menus and actions, built in one place.

``build_menus(window)`` returns a dict name -> QAction; the window connects them. Part 2
(review, export, retrain) adds its own menus next to these.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence


def _action(window, text: str, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
    a = QAction(text, window)
    if shortcut:
        keys = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
        a.setShortcuts([QKeySequence(k) for k in keys])
    a.setCheckable(checkable)
    if tip:
        a.setStatusTip(tip)
    return a


def build_menus(window) -> dict[str, QAction]:
    bar = window.menuBar()
    acts: dict[str, QAction] = {}

    file_menu = bar.addMenu("&File")
    acts["open"] = _action(window, "&Open slide…", QKeySequence.StandardKey.Open,
                           tip="Open a whole-slide image or an ordinary image")
    acts["open_folder"] = _action(window, "Open patch &folder…", "Ctrl+Shift+O",
                                  tip="Open a folder of patch images")
    file_menu.addAction(acts["open"])
    file_menu.addAction(acts["open_folder"])
    window.recent_menu = file_menu.addMenu("Open &recent")
    file_menu.addSeparator()
    acts["label_image"] = _action(window, "Show &label image…",
                                  tip="Label and macro images can show patient names")
    file_menu.addAction(acts["label_image"])
    from pvdesk.ui.qupath_import import install_qupath_import  # File ▸ Import QuPath objects…

    install_qupath_import(window, file_menu, acts)
    acts["settings"] = _action(window, "&Settings…", QKeySequence.StandardKey.Preferences)
    file_menu.addAction(acts["settings"])
    file_menu.addSeparator()
    acts["quit"] = _action(window, "&Quit", QKeySequence.StandardKey.Quit)
    file_menu.addAction(acts["quit"])
    window.file_menu = file_menu

    view_menu = bar.addMenu("&View")
    acts["zoom_in"] = _action(window, "Zoom &in", ["+", "=", QKeySequence.StandardKey.ZoomIn])
    acts["zoom_out"] = _action(window, "Zoom &out", ["-", QKeySequence.StandardKey.ZoomOut])
    acts["fit"] = _action(window, "&Fit to window", ["F", "Ctrl+0"])
    acts["heatmap"] = _action(window, "Show &heatmap", "H", checkable=True)
    acts["heatmap"].setChecked(True)
    for name in ("zoom_in", "zoom_out", "fit"):
        view_menu.addAction(acts[name])
    view_menu.addSeparator()
    view_menu.addAction(acts["heatmap"])
    view_menu.addSeparator()
    window.view_menu = view_menu

    analysis = bar.addMenu("&Analysis")
    acts["run"] = _action(window, "&Run model…", "Ctrl+R",
                          tip="Classify every tissue tile with one or more model bundles")
    acts["cancel_run"] = _action(window, "&Cancel run", "Ctrl+.")
    acts["cancel_run"].setEnabled(False)
    analysis.addAction(acts["run"])
    analysis.addAction(acts["cancel_run"])
    window.analysis_menu = analysis

    from pvdesk.ui.training_menu import install_training_menu  # Training ▸ Retrain, metrics

    install_training_menu(window, acts=acts)

    help_menu = bar.addMenu("&Help")
    acts["about"] = _action(window, "&About pvdesk…")
    help_menu.addAction(acts["about"])
    window.help_menu = help_menu
    return acts
