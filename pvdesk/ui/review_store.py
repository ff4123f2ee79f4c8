"""The review mode's side of the store: which store the open slide uses, recording the
GUI's model runs into it from a background writer thread, reopening (decisions and the
stored heatmap come back without a rerun), review projects and File ▸ Export.

``StoreMixin`` is mixed into ``ReviewController``; every store call that can be large runs
on ``self.writer`` (one thread, in order) and continues on the GUI thread via ``_done``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from PySide6.QtWidgets import QFileDialog

from pvdesk.review.project import RunRecorder, default_store_path
from pvdesk.review.session import ReviewSession
from pvdesk.ui.export_action import ExportDialog


@dataclass(eq=False)
class SlideContext:
    """The open slide or folder and its store (filled in on the writer thread)."""

    source: object
    folder: bool
    project: Path | None
    reviewer: str
    slide_id: str | None = None
    store: object = None
    recorder: RunRecorder | None = None

    def store_path(self) -> Path:
        return self.project or default_store_path(self.slide_id)

    def ensure_store(self, create: bool):
        from pvdesk.review.store import ReviewStore

        if self.slide_id is None:
            self.slide_id = self.source.slide_id
        path = self.store_path()
        if self.store is None and (create or path.exists()):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.store = ReviewStore(path, reviewer=self.reviewer)
        return self.store


def open_job(ctx: SlideContext):
    """Writer thread: the slide's store (when one exists) and its newest run to show."""
    from pvdesk.review.project import latest_runs_by_model, restore_run

    store = ctx.ensure_store(create=ctx.project is not None)
    if store is None:
        return None
    runs = latest_runs_by_model(store, ctx.slide_id)
    if not runs:
        return None
    session = ReviewSession(store, ctx.slide_id, runs[0].run_id)  # reads every tile: here
    if ctx.folder:
        return runs, session, None
    return runs, session, (runs[0], restore_run(store, runs[0].run_id, ctx.slide_id))


def begin_job(ctx: SlideContext, bundles, grid, device) -> dict:
    ctx.ensure_store(create=True)
    ctx.recorder = RunRecorder(ctx.store, ctx.source)
    return ctx.recorder.begin(bundles, grid, device, {"app": "pvdesk"})


class StoreMixin:
    """Needs from ReviewController: w, writer, ctx, run_ctx, session, project, dock,
    dock_widget, sync, acts, exporter, _done, _reload_timer, on_opened, closed."""

    def _submit(self, fn, *args, then=None, ctx=None) -> None:
        done = None
        if then is not None:
            def done(result, error, then=then, ctx=ctx):
                self._done.emit((then, ctx), result, error)
        self.writer.submit(fn, *args, done=done)

    def _on_done(self, tag, result, error) -> None:
        if self.closed:  # the window closed while this was queued
            return
        then, ctx = tag
        try:
            then(ctx, result, error)
        except Exception as exc:  # a store problem must never take the window down
            self.w.status.showMessage(f"Review store: {exc}", 10000)

    # -- opening ----------------------------------------------------------------------------
    def _on_store_opened(self, ctx, result, error) -> None:
        if ctx is not self.ctx:
            return
        if error is not None:
            self.w.status.showMessage(f"Review store not opened: {error}", 10000)
            return
        if ctx.store is not None:
            self.dock.show_diagnosis(*ctx.store.diagnosis(ctx.slide_id))
        if not result:
            self.sync.refresh()
            return
        runs, self.session, restored = result
        self.dock_widget.show()
        if restored is not None and restored[1] is not None:
            self._show_stored_heatmap(*restored)
        self.sync.refresh(center=False)
        c = self.session.counts()
        self.w.status.showMessage(
            f"Reopened the review of this slide: {runs[0].bundle_name}, {c.reviewed}/{c.total} "
            f"tiles reviewed ({ctx.store_path()})", 10000)

    def _show_stored_heatmap(self, run, restored) -> None:
        from pvdesk.ui.worker import RunInfo

        grid, batch = restored
        stub = SimpleNamespace(name=run.bundle_name, version=run.bundle_version, label=run.model,
                               classes=run.classes, trained=run.trained)
        size = tuple(self.w.view.source.dimensions) if self.w.view.source else (0, 0)
        self.w.overlay.begin(RunInfo([stub], grid, run.device, size))
        self.w.overlay.add_batch(batch)
        self.w.overlay.finish("done")

    # -- runs -------------------------------------------------------------------------------
    def on_run_started(self, info) -> None:
        ctx = self.ctx
        if ctx is None or ctx.source is not self.w.source:
            return
        self.run_ctx = ctx
        bundles = {b.name: b for b in info.bundles}
        self._submit(begin_job, ctx, bundles, info.grid, info.device,
                     then=self._on_run_begun, ctx=ctx)

    def _on_run_begun(self, ctx, runs, error) -> None:
        if error is not None:
            self.w.status.showMessage(f"Predictions are NOT being stored: {error}", 15000)
            return
        if ctx is self.ctx and runs:
            self.session = ReviewSession(ctx.store, ctx.slide_id, next(iter(runs.values())),
                                         load=False)  # no predictions yet
            self.dock_widget.show()
            self.sync.refresh(center=False)

    def on_batch(self, batch) -> None:
        ctx = self.run_ctx
        if ctx is not None:
            self._submit(lambda: ctx.recorder and ctx.recorder.add(batch),
                         then=self._on_written, ctx=ctx)

    def _on_written(self, ctx, result, error) -> None:
        if error is not None:
            self.w.status.showMessage(f"Predictions not stored: {error}", 10000)
        if ctx is self.ctx and not self._reload_timer.isActive():
            self._reload_timer.start()

    def on_run_finished(self, state: str) -> None:
        ctx, self.run_ctx = self.run_ctx, None
        if ctx is None:
            return
        self._submit(lambda: None, then=self._on_run_written, ctx=ctx)

    def _on_run_written(self, ctx, result, error) -> None:
        if ctx is not self.ctx:
            if ctx.store is not None:
                self._submit(ctx.store.close)
            return
        self._reload_timer.stop()
        self._reload()
        if self.session is not None:
            # keep the run's own message (tiles classified, unreadable ones) in front
            run_msg = self.w.status.currentMessage()
            stored = (f"Predictions stored in {ctx.store_path().name}. Press R to review them "
                      "from the keyboard.")
            self.w.status.showMessage(f"{run_msg} · {stored}" if run_msg else stored, 15000)

    def _reload(self) -> None:
        """Re-read the session's tiles on the writer thread (a run on a large slide keeps
        adding them), then show them."""
        s = self.session
        if s is not None:
            self._submit(s.snapshot, then=self._on_snapshot, ctx=s)

    def _on_snapshot(self, session, tiles, error) -> None:
        if session is self.session and error is None:
            session.apply(tiles)
            self.sync.refresh(center=False)

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
