"""The Training menu (Retrain…, Model metrics…) and what connects it to the main window.

``install_training_menu(window, before)`` adds the menu and returns a TrainingController,
which owns the retrain dialog, registers new bundles in the model folders setting, starts
"Load and run on the open slide" through ``window.start_run`` (the Analysis ▸ Run model
path), and stops a running training when the window closes or the app quits.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject
from PySide6.QtGui import QAction

from pvdesk.paths import user_models_dir


def _window_store(window):
    """The review store the window has open, if any (the review mode's attribute names)."""
    for obj in (window, getattr(window, "review", None), getattr(window, "review_session", None),
                getattr(window, "session", None)):
        store = getattr(obj, "store", None) if obj is not None else None
        if store is not None:
            return store
    return None


class TrainingController(QObject):
    def __init__(self, window, python: str | None = None, extra_args=None):
        super().__init__(window)
        self.window = window
        self.python = python
        self.extra_args = list(extra_args or [])
        self.dialog = None
        self.metrics_dialog = None
        self._opened_store = None
        window.installEventFilter(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # -- the review store ---------------------------------------------------------------
    def store(self):
        """The window's review store, else the open slide's default store file when present."""
        store = _window_store(self.window)
        if store is not None:
            return store
        source = getattr(self.window, "source", None)
        if source is None:
            return None
        try:
            from pvdesk.review.project import find_review_store
            from pvdesk.review.store import ReviewStore

            path, _ = find_review_store(source, source.slide_id)
            if not path.is_file():
                return None
            if self._opened_store is None or Path(self._opened_store.path) != path:
                self._close_opened()
                self._opened_store = ReviewStore(path, create=False)
            return self._opened_store
        except Exception:  # noqa: BLE001 - no store is a normal answer here
            return None

    def store_note(self) -> tuple[str, bool]:
        """(what the store holds, in words; whether it has one slide only)."""
        store = self.store()
        if store is None:
            return "", False
        try:
            counts = store.class_counts(None)
            labelled = sum(v[1] for v in counts.values())
            total = store.tile_count()
            slides = len(store.slides())
        except Exception:  # noqa: BLE001
            return "the project's review store", False
        where = "one slide" if slides == 1 else f"{slides} slides"
        return f"{labelled} of {total} tiles have a reviewer's label ({where})", slides == 1

    def _close_opened(self) -> None:
        if self._opened_store is not None:
            try:
                self._opened_store.close()
            except Exception as exc:  # noqa: BLE001 - reported; the window goes on
                print(f"pvdesk: closing the review store after retraining failed: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
            self._opened_store = None

    # -- dialogs ------------------------------------------------------------------------
    def open_retrain(self):
        from pvdesk.ui.retrain_dialog import RetrainDialog

        if self.dialog is None:
            note, one = self.store_note()
            self.dialog = RetrainDialog(self.window, store_provider=self.store,
                                        python=self.python, extra_args=self.extra_args,
                                        store_note=note, one_slide=one)
            self.dialog.trained.connect(self.register)
            self.dialog.load_requested.connect(self.load_and_run)
        elif not self.dialog.running:
            self.dialog.data.set_store_note(*self.store_note())
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def open_metrics(self, bundle=None):
        from pvdesk.ui.metrics_view import MetricsDialog

        self.metrics_dialog = MetricsDialog(self.window.settings, self.window, select=bundle)
        self.metrics_dialog.show()
        return self.metrics_dialog

    # -- new bundles ----------------------------------------------------------------------
    def register(self, folder: str) -> None:
        """Make a new bundle visible to Run model: its folder joins the model folders setting
        (the user's models folder is searched anyway)."""
        folder = str(Path(folder).resolve())
        settings = self.window.settings
        inside = Path(folder).parent == user_models_dir().resolve()
        if not inside and folder not in settings.model_folders:
            settings.model_folders.append(folder)
        try:
            settings.save()
        except OSError as exc:  # the folder is used now; only remembering it failed
            self.window.status.showMessage(
                f"Model folder not saved in the settings: {exc}", 10000)

    def load_and_run(self, folder: str) -> bool:
        from pvdesk.errors import PvdeskError
        from pvdesk.models import find_bundles, resolve_bundle
        from pvdesk.ui.worker import RunRequest

        w = self.window
        self.register(folder)
        note = self.dialog.show_message if self.dialog is not None else (lambda _m: None)
        if getattr(w, "source", None) is None:
            note("Open a slide first (File ▸ Open slide…), then press Load and run again. "
                 "The new model is also listed in Analysis ▸ Run model.")
            return False
        if w.runs.running:
            note("A model run is already in progress on this slide.")
            return False
        try:
            bundle = resolve_bundle(folder)
        except PvdeskError as exc:
            note(str(exc))
            return False
        folders = list(w.settings.model_folders)
        same = [b for b in find_bundles(folders) if b.name == bundle.name]
        key = bundle.name if same and same[0].path.resolve() == Path(folder).resolve() \
            else str(Path(folder).resolve())
        note("")
        return w.start_run(RunRequest(bundles=[key], device=w.settings.default_device,
                                      model_folders=folders))

    # -- closing ------------------------------------------------------------------------
    def shutdown(self) -> None:
        if self.dialog is not None:
            self.dialog.shutdown()
        self._close_opened()

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False


def install_training_menu(window, before=None, acts: dict | None = None
                          ) -> TrainingController:
    """Add Training ▸ Retrain… and Model metrics… (at the end of the menu bar, or before
    the ``before`` menu); the actions go into ``acts`` as "retrain" and "metrics"."""
    from PySide6.QtWidgets import QMenu

    menu = QMenu("&Training", window)
    if before is None:
        window.menuBar().addMenu(menu)
    else:
        window.menuBar().insertMenu(before.menuAction(), menu)
    ctl = TrainingController(window)
    retrain = QAction("&Retrain…", window)
    retrain.setStatusTip("Train a new model head from reviewed tiles, exported CSVs or a "
                         "folder dataset")
    retrain.triggered.connect(ctl.open_retrain)
    metrics = QAction("Model &metrics…", window)
    metrics.setStatusTip("Accuracy, per-class scores and the confusion matrix of a model")
    metrics.triggered.connect(lambda: ctl.open_metrics())
    menu.addAction(retrain)
    menu.addAction(metrics)
    if acts is not None:
        acts["retrain"], acts["metrics"] = retrain, metrics
    window.training_menu = menu
    window.training = ctl
    return ctl
