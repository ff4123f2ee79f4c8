"""Review mode, patch-folder mode and export, wired into the main window.

Thin glue over the application layer (``pvdesk.app.review_service``): the review session
lives in memory and answers a key at once; every store call (opening, reviewer actions,
another run) runs on one background writer thread and comes back through ``self.relay``.
Keys reach the review session only in review mode (R) and never while a text field has
focus; otherwise the arrows pan.
"""

from __future__ import annotations

from pathlib import Path

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

from pvdesk.app.review_service import ReviewService
from pvdesk.review.project import BackgroundWriter
from pvdesk.ui.background import Relay
from pvdesk.ui.cohort_controller import CohortController
from pvdesk.ui.explain_action import ExplainAction
from pvdesk.ui.export_action import Exporter
from pvdesk.ui.patch_grid import GridItem, PatchGrid
from pvdesk.ui.review_dock import ReviewDock
from pvdesk.ui.review_layer import ReviewLayer, TilePicker
from pvdesk.ui.review_menus import build_review_menus
from pvdesk.ui.review_store import SlideContext, StoreMixin, open_job, service_job
from pvdesk.ui.review_sync import ReviewSync
from pvdesk.ui.similar_action import SimilarAction
from pvdesk.ui.team_controller import TeamController
from pvdesk.ui.text_search_action import TextSearchAction

TEXT_INPUTS = (QLineEdit, QPlainTextEdit, QTextEdit, QAbstractSpinBox)
KEY_TOKENS = {Qt.Key.Key_Return: "enter", Qt.Key.Key_Enter: "enter", Qt.Key.Key_Space: "space",
              Qt.Key.Key_Up: "up", Qt.Key.Key_Down: "down", Qt.Key.Key_Left: "left",
              Qt.Key.Key_Right: "right"}
BLOCKING_MODS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                 | Qt.KeyboardModifier.MetaModifier)


class ReviewController(StoreMixin, QObject):
    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self.writer = BackgroundWriter()
        self.relay = Relay(self)
        self.relay.error.connect(lambda msg: window.status.showMessage(f"Review: {msg}", 10000))
        self.ctx: SlideContext | None = None
        self.run_ctx: SlideContext | None = None
        self.session: ReviewService | None = None
        self.project: Path | None = None
        self.want_run: int | None = None  # the run the next opened slide shows (cohort table)
        self.mode = False
        self.closed = False
        self.dock = ReviewDock()
        self.dock_widget = window._dock("Review", self.dock, "review")
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock_widget)
        window.resizeDocks([self.dock_widget], [390], Qt.Orientation.Horizontal)
        self.dock_widget.hide()  # shown once there is something to review
        self.layer = ReviewLayer()
        window.view.add_layer(self.layer)
        self.picker = TilePicker(window.view, self.layer, self)
        self.grid = PatchGrid()
        window.stack.addWidget(self.grid)
        self.store_label = QLabel()
        window.status.addPermanentWidget(self.store_label)
        self.exporter = Exporter(self, window)
        self.sync = ReviewSync(self)
        self.similar = SimilarAction(self)  # S: select the tiles most like this one
        self.acts = build_review_menus(window, self.command)
        self.w.view_menu.addAction(self.dock_widget.toggleViewAction())
        self.explain = ExplainAction(self, self.similar)  # E: Grad-CAM over the tile
        self.search = TextSearchAction(self, self.explain.toolbar)  # a phrase over the slide
        self.team = TeamController(self)  # reviewer, blinded reading, adjudication, merge
        self._wire()
        self.cohort = CohortController(self)  # File ▸ Cohort table of the review project
        # Review keys are caught on whichever widget of the window has the focus. Not with an
        # application-wide filter: that runs Python (and takes the GIL) for every event of
        # every object, which stalled the event loop while a run's threads held the GIL.
        self._filtered = None
        QApplication.instance().focusChanged.connect(self._follow_focus)
        self._follow_focus(None, QApplication.focusWidget())

    def _wire(self) -> None:
        w, a, d = self.w, self.acts, self.dock
        w.opener.opened.connect(self.on_opened)
        w.runs.started.connect(self.on_run_started)
        w.runs.tiles.connect(self.on_tiles)
        w.runs.store_failed.connect(self.on_store_failed)
        w.runs.finished.connect(self.on_run_finished)
        w.view.clicked.connect(self.on_view_clicked)
        self.picker.toggled.connect(self.on_toggle_at)
        self.picker.banded.connect(self.on_band)
        a["mode"].toggled.connect(self.set_mode)
        d.mode.toggled.connect(self.set_mode)
        a["undo"].triggered.connect(lambda: self.act("undo"))
        a["redo"].triggered.connect(lambda: self.act("redo"))
        d.undo.clicked.connect(lambda: self.act("undo"))
        d.redo.clicked.connect(lambda: self.act("redo"))
        a["clear_selection"].triggered.connect(self.clear_selection)
        a["export"].triggered.connect(self.choose_export)
        a["project"].triggered.connect(self.choose_project)
        a["per_slide"].triggered.connect(lambda on: self.use_project(None) if on else None)
        d.label_clicked.connect(lambda name: self.act("correct", name))
        d.confirm_clicked.connect(lambda: self.act("confirm"))
        d.diagnosis_changed.connect(self.on_diagnosis)
        d.patient_changed.connect(self.on_patient)
        for combo in (d.klass, d.status, d.order):
            combo.currentIndexChanged.connect(self.on_filters)
        d.disagree.toggled.connect(self.on_filters)
        d.run.currentIndexChanged.connect(self.on_run_chosen)

    @property
    def store(self):
        """The open slide's review store (None until it has one)."""
        return self.ctx.store if self.ctx is not None else None

    def on_opened(self, opened) -> None:
        self.dock.flush_diagnosis()
        old = self.ctx
        if old is not None and old is not self.run_ctx and old.store is not None:
            self._submit(old.store.close)
        folder = getattr(opened.source, "kind", "") == "folder"
        self.ctx = SlideContext(opened.source, folder, self.project, self._reviewer())
        self.ctx.want_run, self.want_run = self.want_run, None
        self._use_session(None)
        self.sync.clear()
        self.dock.disagree.setEnabled(folder)
        if folder:
            self.dock_widget.show()
            self.grid.patches.set_items([GridItem(str(p.path), p.label)
                                         for p in opened.source.patches])
            self.w.stack.setCurrentWidget(self.grid)
        else:
            self.w.stack.setCurrentWidget(self.w.view)
        self._submit(open_job, self.ctx, self.writer, then=self._on_store_opened, ctx=self.ctx)

    def _reviewer(self) -> str:
        from pvdesk.review.store import default_reviewer

        return (self.w.settings.reviewer or "").strip() or default_reviewer()

    def set_mode(self, on: bool) -> None:
        self.mode = bool(on)
        self.picker.active = self.mode
        self.acts["mode"].setChecked(self.mode)
        self.dock.set_mode(self.mode)
        if not self.mode:
            return
        self.dock_widget.show()
        self.dock_widget.raise_()
        target = self.grid if self.ctx and self.ctx.folder else self.w.view
        target.setFocus()
        if self.session is None:
            self.w.status.showMessage("Nothing to review yet: run a model on this slide "
                                      "(Analysis ▸ Run model…).", 8000)
            return
        if self.session.current is None:
            self.session.first()
        self.sync.refresh(center=True)

    def command(self, token: str) -> bool:
        """A review key (see pvdesk.review.session.key_command)."""
        if self.session is None:
            self.w.status.showMessage("Nothing to review yet: run a model first.", 5000)
            return False
        if self.team.refuses(token):
            return True
        try:
            what = self.session.command(token)
        except Exception as exc:  # a store error must never take the window down
            self.w.status.showMessage(f"Not stored: {exc}", 10000)
            return True
        if what is not None:
            self.sync.refresh(center=True)
        return what is not None

    def act(self, what: str, label: str | None = None) -> None:
        s = self.session
        if s is None or (what == "confirm" and self.team.refuses("enter")):
            return
        if what == "confirm":
            s.confirm()
        elif what == "correct":
            s.correct(label)
        elif what == "undo":
            s.undo()
        elif what == "redo":
            s.redo()
        self.sync.refresh(center=True)

    def clear_selection(self) -> None:
        if self.session is not None:
            self.session.selection.clear()
            self.sync.refresh(center=False)

    def on_view_clicked(self, x: float, y: float, modifiers) -> None:
        s = self.session
        if not self.mode or s is None:
            return
        rec = s.tile_at(x, y)
        if rec is not None:
            s.selection.clear()
            s.goto_tile(rec.tile_id)
            self.sync.refresh(center=False)

    def on_toggle_at(self, x: float, y: float) -> None:
        s = self.session
        rec = s.tile_at(x, y) if s else None
        if rec is not None:
            s.toggle([rec.tile_id])
            self.sync.refresh(center=False)

    def on_band(self, x0, y0, x1, y1) -> None:
        if self.session is not None:
            self.session.selection.update(self.session.tiles_in(x0, y0, x1, y1))
            self.sync.refresh(center=False)

    def on_filters(self, *_) -> None:
        if self.session is not None:
            self.session.set_filters(**self.dock.filters())
            if self.session.current is None or self.session.index < 0:
                self.session.first()
            self.sync.refresh(center=False)

    def on_run_chosen(self, *_) -> None:
        """Another run of the slide: its queue is loaded on the writer thread."""
        run_id = self.dock.run.currentData()
        s, ctx = self.session, self.ctx
        if s is None or ctx is None or run_id is None or run_id == s.run_id:
            return
        self._submit(service_job, ctx, run_id, self.writer, self.dock.filters(),
                     then=self._on_run_loaded, ctx=ctx)

    def _on_run_loaded(self, ctx, session, error) -> None:
        if error is not None:
            self.w.status.showMessage(f"That run could not be loaded: {error}", 10000)
            return
        if ctx is self.ctx:
            self._use_session(session)

    @staticmethod
    def _slide_store(ctx):
        """The slide's store, made if needed, with the slide recorded in it (a slide-level
        fact can be stored before any run)."""
        store = ctx.ensure_store(create=True)
        if not any(s["slide_id"] == ctx.slide_id for s in store.slides()):
            store.add_slide(ctx.slide_id, str(Path(ctx.source.path).resolve()),
                            ctx.source.properties())
        return store

    def on_diagnosis(self, label, comment: str) -> None:
        ctx = self.ctx
        if ctx is None or ctx.slide_id is None:
            return
        try:
            store = self._slide_store(ctx)
            store.set_diagnosis(ctx.slide_id, label, comment)
        except Exception as exc:
            self.w.status.showMessage(f"Diagnosis not stored: {exc}", 10000)
            return
        self.dock.show_diagnosis(*store.diagnosis(ctx.slide_id))
        self.sync.refresh_status()

    def on_patient(self, code: str) -> None:
        ctx = self.ctx
        if ctx is None or ctx.slide_id is None:
            return
        try:
            self._slide_store(ctx).set_patient(ctx.slide_id, code)
        except Exception as exc:
            self.w.status.showMessage(f"Patient not stored: {exc}", 10000)
            code = ctx.store.patients().get(ctx.slide_id) if ctx.store is not None else None
        self.dock.show_patient(code)

    # -- keys -------------------------------------------------------------------------------
    def _follow_focus(self, _old, new) -> None:
        """Filter the events of the focused widget of this window (the window itself when
        nothing in it has the focus)."""
        if self.closed or not shiboken6.isValid(self.w):  # focus moved as the app quit
            return
        target = new if isinstance(new, QWidget) and new.window() is self.w else self.w
        if target is self._filtered:
            return
        if self._filtered is not None and shiboken6.isValid(self._filtered):
            self._filtered.removeEventFilter(self)
        target.installEventFilter(self)
        self._filtered = target

    def eventFilter(self, obj, event) -> bool:
        if event.type() != QEvent.Type.KeyPress or not self.mode:
            return False
        if not isinstance(obj, QWidget) or obj.window() is not self.w:
            return False
        focus = QApplication.focusWidget()
        if (focus is not None and obj is not focus) or isinstance(focus, TEXT_INPUTS):
            return False
        if event.modifiers() & BLOCKING_MODS:
            return False
        if event.key() == Qt.Key.Key_Escape:
            self.clear_selection()
            return True
        if self.team.refuses_key(event.key()):
            return True
        if event.key() == Qt.Key.Key_S:
            return self.similar.start()
        if event.key() == Qt.Key.Key_E:
            return self.explain.start()
        token = KEY_TOKENS.get(event.key()) or event.text()
        return bool(token) and self.command(token)

    # -- closing ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        self.closed = True
        self.relay.close()
        if self._filtered is not None:  # the first shutdown (closing can repeat it)
            QApplication.instance().focusChanged.disconnect(self._follow_focus)
        if self._filtered is not None and shiboken6.isValid(self._filtered):
            self._filtered.removeEventFilter(self)
        self._filtered = None
        self.dock.flush_diagnosis()
        self.exporter.shutdown()
        self.team.shutdown()
        self.cohort.tasks.shutdown()
        self.similar.shutdown()
        self.explain.shutdown()
        self.search.shutdown()
        self.grid.shutdown()
        self.writer.close()
        for ctx in {self.ctx, self.run_ctx} - {None}:
            if ctx.store is not None:
                ctx.store.close()
