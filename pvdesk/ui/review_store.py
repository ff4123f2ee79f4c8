"""The review mode's side of the store: which store the open slide uses, the run being
recorded into it (by the application layer's RunSession, off the GUI thread), reopening
(decisions and the stored heatmap come back without a rerun), review projects and
File ▸ Export.

``StoreMixin`` is mixed into ``ReviewController``; every store call that can be large runs
on ``self.writer`` (one thread, in order) and continues on the GUI thread through the
controller's relay. The review session is a :class:`pvdesk.app.review_service.ReviewService`:
key presses change it in memory and its writes are acknowledged through ``_on_acks``.
"""

from __future__ import annotations

import gc
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from PySide6.QtWidgets import QFileDialog

from pvdesk.app.review_service import ReviewService
from pvdesk.app.run_session import RunInfo, StoreTarget
from pvdesk.ui.export_action import ExportDialog


@dataclass(eq=False)
class SlideContext:
    """The open slide or folder and its store (opened off the GUI thread)."""

    source: object
    folder: bool
    project: Path | None
    reviewer: str
    slide_id: str | None = None
    store: object = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    path: Path | None = None  # the store file, once chosen
    team: object = None  # pvdesk.app.team.TeamState, read with the store (writer thread)
    want_run: int | None = None  # show this run of the slide (the cohort table's choice)

    def store_path(self) -> Path:
        if self.path is None:
            from pvdesk.review.project import find_review_store

            if self.slide_id is None:
                self.slide_id = self.source.slide_id
            # the store may know this slide under the id an earlier version gave it
            self.path, self.slide_id = find_review_store(self.source, self.slide_id,
                                                         self.project)
        return self.path

    def ensure_store(self, create: bool):
        """The slide's store, opened once (the writer and a run's thread may both ask)."""
        from pvdesk.review.store import ReviewStore

        with self._lock:
            path = self.store_path()
            if self.store is None and (create or path.exists()):
                path.parent.mkdir(parents=True, exist_ok=True)
                self.store = ReviewStore(path, reviewer=self.reviewer)
            return self.store


def open_job(ctx: SlideContext, writer):
    """Writer thread: the slide's store (when one exists), the run to show (the one last
    reviewed, else the newest) as a loaded ReviewService, and its stored heatmap."""
    from pvdesk.app.team import load_team_state
    from pvdesk.review.project import last_reviewed_run, latest_runs_by_model, restore_run

    store = ctx.ensure_store(create=ctx.project is not None)
    if store is None:
        return None
    runs = latest_runs_by_model(store, ctx.slide_id)
    if not runs:
        ctx.team = load_team_state(store)
        return None
    wanted = [r.run_id for r in runs if r.run_id == ctx.want_run]
    run_id = (wanted or [last_reviewed_run(store, ctx.slide_id) or runs[0].run_id])[0]
    ctx.team = load_team_state(store, run_id)  # who acts, blinded or not, disputed tiles
    run = store.run(run_id)
    session = ReviewService(store, ctx.slide_id, run_id, writer=writer)  # reads every tile
    if ctx.folder:
        return run, session, None
    return run, session, restore_run(store, run_id, ctx.slide_id)


def service_job(ctx: SlideContext, run_id: int, writer, filters: dict):
    """Writer thread: a ReviewService over another run of the slide, filtered."""
    from pvdesk.app.team import load_team_state

    ctx.team = load_team_state(ctx.store, run_id)  # the adjudicator's disputed tiles
    session = ReviewService(ctx.store, ctx.slide_id, run_id, writer=writer)
    session.set_filters(**filters)
    session.first()
    return session


class StoreMixin:
    """Needs from ReviewController: w, writer, relay, ctx, run_ctx, session, project, dock,
    dock_widget, sync, acts, exporter, on_opened, closed."""

    def _submit(self, fn, *args, then=None, ctx=None) -> None:
        done = None
        if then is not None:
            relayed = self.relay.wrap(lambda result, error: self._on_done(then, ctx, result,
                                                                          error))

            def done(result, error):
                relayed(result, error)
        self.writer.submit(fn, *args, done=done)

    def _on_done(self, then, ctx, result, error) -> None:
        if self.closed:  # the window closed while this was queued
            return
        try:
            then(ctx, result, error)
        except Exception as exc:  # a store problem must never take the window down
            self.w.status.showMessage(f"Review store: {exc}", 10000)

    def _use_session(self, session) -> None:
        """Show ``session`` (a ReviewService); its acknowledgements come back by the relay."""
        old, self.session = self.session, session
        if old is not None:
            old.ready.clear()
        if session is not None:
            session.ready.connect(self.relay.wrap(self._on_acks))
            session.poll()
            # The session's tens of thousands of records live as long as it does: keep them
            # out of the cyclic collector's full passes, which would otherwise walk them all
            # (tens of ms at 100k tiles) at some key press.
            gc.freeze()
        self._show_taxonomy(session.taxonomy if session is not None else None)
        self.team.on_session(session)  # blinded orders, the adjudicator's queue
        self.sync.refresh(center=False)
        self.sync.refresh_runs()

    def _show_taxonomy(self, tax) -> None:
        """The run's classes on the review views: keys, label buttons, menu, colours."""
        from pvdesk.ui.review_layer import show_taxonomy, shown_taxonomy
        from pvdesk.ui.review_menus import set_label_actions

        show_taxonomy(tax)
        tax = shown_taxonomy()
        self.dock.set_taxonomy(tax)
        set_label_actions(self.w, tax, self.command, label=lambda n: self.act("correct", n))

    def _on_acks(self) -> None:
        s = self.session
        if s is None:
            return
        acks = s.poll()
        failed = [a for a in acks if a.error]
        if failed:
            self.w.status.showMessage(f"NOT stored (the screen shows what the store holds): "
                                      f"{failed[-1].error}", 15000)
        if acks:
            self.sync.refresh(center=any(a.kind in ("undo", "redo") for a in acks))

    # -- opening ----------------------------------------------------------------------------
    def _on_store_opened(self, ctx, result, error) -> None:
        if ctx is not self.ctx:
            return
        if error is not None:
            self.w.status.showMessage(f"Review store not opened: {error}", 10000)
            return
        self.team.refresh()  # the reviewer's role and the project's reading settings
        if ctx.store is not None:
            self.dock.show_diagnosis(*ctx.store.diagnosis(ctx.slide_id))
            self.dock.show_patient(ctx.store.patients().get(ctx.slide_id))
        if not result:
            self.sync.refresh()
            return
        run, session, restored = result
        self.dock_widget.show()
        self._use_session(session)
        if restored is not None:
            self._show_stored_heatmap(run, restored)
        c = session.counts()
        self.w.status.showMessage(
            f"Reopened the review of this slide: {run.bundle_name}, {c.reviewed}/{c.total} "
            f"tiles reviewed ({ctx.store_path()})", 10000)

    def _show_stored_heatmap(self, run, restored) -> None:
        grid, batch = restored
        from pvdesk.taxonomy import Taxonomy

        stub = SimpleNamespace(name=run.bundle_name, version=run.bundle_version, label=run.model,
                               classes=run.classes, trained=run.trained,
                               taxonomy=Taxonomy.of_run(run))
        size = tuple(self.w.view.source.dimensions) if self.w.view.source else (0, 0)
        self.w.overlay.show_stored(RunInfo([stub], grid, run.device, size), batch)

    # -- runs -------------------------------------------------------------------------------
    def run_target(self):
        """Where the window's next run is recorded: the open slide's store."""
        ctx = self.ctx
        if ctx is None or ctx.source is not self.w.source:
            return None
        self.run_ctx = ctx
        # the dock appears now, on the user's gesture, not when the run has its grid: its
        # layout then would stall the event loop just as results start to stream
        self.dock_widget.show()
        return StoreTarget(lambda: ctx.ensure_store(create=True), ctx.source,
                           slide_id=lambda: ctx.slide_id)

    def on_run_started(self, info) -> None:
        ctx = self.run_ctx
        if ctx is None or ctx is not self.ctx or not info.runs:
            return
        run_id = info.runs.get(info.bundles[0].name)
        session = ReviewService(ctx.store, ctx.slide_id, run_id, load=False, writer=self.writer)
        session.frozen = True  # rows join the end as they stream in; sorted when it ends
        session.set_filters(**self.dock.filters())
        self._use_session(session)

    def on_tiles(self, run_id, records) -> None:
        s = self.session
        if s is not None and s.run_id == run_id and self.run_ctx is self.ctx:
            s.add_records(records)
            if s.current is None and s.entries and self.mode:
                s.first()
            self.sync.refresh(center=False)

    def on_store_failed(self, message: str) -> None:
        self.w.status.showMessage(f"Predictions are NOT being stored: {message}", 15000)

    def on_run_finished(self, state: str) -> None:
        ctx, self.run_ctx = self.run_ctx, None
        if ctx is None:
            return
        if ctx is not self.ctx:
            if ctx.store is not None:
                self._submit(ctx.store.close)
            return
        s = self.session
        if s is not None and s.frozen:
            s.settle()
            self.sync.refresh(center=False)
            self.sync.refresh_runs()
            # keep the run's own message (tiles classified, unreadable ones) in front
            run_msg = self.w.status.currentMessage()
            stored = "stored; press R to review"  # the store's file is named in the dock
            self.w.status.showMessage(f"{run_msg} · {stored}" if run_msg else stored, 15000)

    # -- review -----------------------------------------------------------------------------
    def choose_project(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.w, "Open or create a review project", str(self.project or Path.home()),
            "Review stores (*.pvdb)", options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.use_project(Path(path).with_suffix(".pvdb"))

    def use_project(self, path: Path | None) -> None:
        """Review into one project file (None: one store per slide); reopens the slide."""
        self.project = Path(path) if path else None
        self.acts["per_slide"].setChecked(self.project is None)
        if self.w.opened is not None:
            self.on_opened(self.w.opened)

    def choose_export(self) -> None:
        ctx, s = self.ctx, self.session
        if ctx is None or ctx.store is None or s is None:
            self.w.status.showMessage("Nothing to export yet: run a model first.", 6000)
            return
        src = Path(ctx.source.path)
        folder = src if src.is_dir() else src.parent
        if not os.access(folder, os.W_OK):
            folder = Path.home()
        default = folder / f"{src.stem if src.suffix else src.name}_clip_predictions.csv"
        dlg = ExportDialog(default, self.w)
        if dlg.exec():
            self.export_to(*dlg.targets())

    def export_to(self, csv_path, geojson_path=None) -> bool:
        s = self.session
        if s is None or self.exporter.busy:
            return False
        store, run_id = s.store, s.run_id
        # after the predictions already queued for the store are written
        self._submit(lambda: None, ctx=None, then=lambda *_: self.exporter.start(
            store, csv_path, geojson_path, run_id=run_id))
        return True
