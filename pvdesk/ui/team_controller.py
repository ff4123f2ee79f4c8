"""Team review in the window: the acting reviewer (Review ▸ Switch reviewer…, always named
in the status bar), blinded reading (Review ▸ Blinded reading…), the adjudicator's
disputed-tiles queue, File ▸ Merge review projects… and the Team panel (View ▸ Team).

Part of ``ReviewController`` (``controller.team``). Store reads and writes run on the review
writer thread (the team state is read there with the session, ``SlideContext.team``);
merging and agreement figures run on ``Tasks`` threads; the Team panel recomputes by itself
after a merge, a stored decision, another reviewer or store (``team_refresh.Refresher``:
debounced, one at a time, only while the panel is visible). Switching reviewer or changing
the reading settings reopens the slide, so the queue, the outlines and the undo stack are
those of the reviewer now acting.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QLabel

from pvdesk.app.team import ADJUDICATOR, READER, TeamState, save_reading_settings
from pvdesk.ui.background import Tasks, describe_error
from pvdesk.ui.menus import _action
from pvdesk.ui.review_dock import key_range
from pvdesk.ui.team_dialogs import ReadingDialog, ReviewerDialog
from pvdesk.ui.team_panel import TeamPanel
from pvdesk.ui.team_refresh import Refresher
from pvdesk.ui.team_view import apply_to_dock

BLIND_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space, Qt.Key.Key_S, Qt.Key.Key_E)
BLIND_TOKENS = ("enter", "return", "space", " ")
REFUSED = ("Blinded reading: label the tile with {keys}, 0 or U (there is no prediction to "
           "confirm; similar tiles and Grad-CAM are off too).")
LABEL_STYLE = "QLabel { padding: 0 4px; }"
BLIND_STYLE = "QLabel { padding: 0 4px; font-weight: bold; background: #263238; color: white; }"
MAX_NAME = 16  # a longer name is cut in the status bar (whole in its tooltip)


class TeamController(QObject):
    def __init__(self, controller):
        super().__init__(controller)
        self.c = controller
        self.w = w = controller.w
        self.state: TeamState | None = None
        self._tabbed = False  # the Team dock becomes a tab beside the heatmap's when shown
        self._announce: str | None = None  # "Reviewer switched: a → b", shown once reopened
        self.tasks = Tasks(self, "pvdesk-team")  # merges
        self.figure_tasks = Tasks(self, "pvdesk-agreement")  # the panel's figures
        self._key = None  # (store, reviewer, run) the panel's figures were last asked for
        self._merged: Path | None = None  # the panel shows this merge's output until the
        # open store changes again
        self.label = QLabel()
        w.status.addPermanentWidget(self.label)
        self.panel = TeamPanel()
        self.refresher = Refresher(self._start_figures, self.panel.set_pending, self)
        self.dock_widget = w._dock("Team", self.panel, "team")
        self.dock_widget.hide()
        w.view_menu.addAction(self.dock_widget.toggleViewAction())
        self.panel.compute_clicked.connect(self.compute)
        self.dock_widget.visibilityChanged.connect(self._on_panel_shown)
        review = w.review_menu
        first = review.actions()[0] if review.actions() else None
        self.switch_act = _action(w, "S&witch reviewer…",
                                  tip="Review as another person (their decisions, their undo)")
        self.reading_act = _action(w, "&Blinded reading…",
                                   tip="Hide the model and other reviewers' labels while "
                                       "reading; the blinded queue's order")
        review.insertActions(first, [self.switch_act, self.reading_act])
        review.insertSeparator(first)
        self.merge_act = _action(w, "&Merge review projects…",
                                 tip="Bring several reviewers' stores together in one file")
        w.file_menu.insertAction(w.actions_["label_image"], self.merge_act)
        self.switch_act.triggered.connect(self.choose_reviewer)
        self.reading_act.triggered.connect(self.choose_reading)
        self.merge_act.triggered.connect(self.choose_merge)
        # File ▸ Settings edits the reviewer name too: a changed name is a switch, applied
        # and announced as one (connected after the dialog's own slot, so it runs after it)
        w.actions_["settings"].triggered.connect(self._after_settings)
        self._apply()

    # -- state ----------------------------------------------------------------------------
    @property
    def blinded(self) -> bool:
        return bool(self.state and self.state.blinded)

    @property
    def reviewer(self) -> str:
        return self.state.reviewer if self.state else self.c._reviewer()

    def refresh(self) -> None:
        """The open slide's team state (read with its store) onto the widgets."""
        ctx = self.c.ctx
        self.state = getattr(ctx, "team", None) if ctx is not None else None
        self._apply()
        store = ctx.store if ctx is not None else None
        key = (str(store.path) if store is not None else None, self.reviewer,
               self.c.session.run_id if self.c.session is not None else None)
        if store is not None and key != self._key:  # another store, reviewer or run
            self._key = key
            self._store_changed()
        if self._announce and self.state is not None:
            # after the store's own "Reopened…" line, which would hide the switch
            note, self._announce = self._announce, None
            QTimer.singleShot(0, lambda: self.w.status.showMessage(
                " · ".join(x for x in (note, self.w.status.currentMessage()) if x), 15000))

    def on_session(self, session) -> None:
        """A session is about to be shown: blinded orders and the adjudicator's queue are
        applied before its first row is drawn."""
        self.refresh()
        if session is not None:
            session.blinded = self.blinded  # counts without "corrected" (it tells the model)
            # a decision stored (acknowledged): the panel's figures may have changed (the
            # listener goes with the session: _use_session clears the old one's)
            session.ready.connect(self.c.relay.wrap(self._store_changed))
        if session is not None and self.state is not None and (
                self.state.blinded or self.state.adjudicator):
            session.set_filters(**self.c.dock.filters())

    def _apply(self) -> None:
        s, c = self.state, self.c
        blinded = self.blinded
        apply_to_dock(c.dock, s)
        self.w.overlay.set_blinded(blinded)
        c.grid.set_blinded(blinded)
        c.explain.toolbar.setEnabled(not blinded)
        # what would show the model's opinion another way: Grad-CAM, similar tiles, the
        # export (predictions), retraining's counts of confirmations and corrections
        for a in (c.explain.action, c.explain.similar_action, c.acts["export"],
                  self.w.actions_.get("retrain")):
            if a is not None:
                a.setEnabled(not blinded)
        for a in (c.explain.action, c.explain.similar_action):
            b = c.explain.toolbar.widgetForAction(a)  # a changed action resets its button's
            if b is not None and "\t" in a.text():  # text: keep "Why this tile? (E)"
                text, key = a.text().split("\t", 1)
                b.setText(f"{text} ({key})")
        if c.session is not None:
            c.session.blinded = blinded
        for a in self.w.review_menu.actions():
            if a.text().startswith("Confirm the prediction"):
                a.setEnabled(not blinded)
        name = self.reviewer
        text = f"Reviewer: {name if len(name) <= MAX_NAME else name[:MAX_NAME - 1] + '…'}"
        if s is not None and s.adjudicator:
            text += " (adjudicator)"
        if blinded:
            text += " · BLINDED"
        self.label.setText(text)
        self.label.setStyleSheet(BLIND_STYLE if blinded else LABEL_STYLE)
        self.label.setToolTip(f"Every decision is stored under {name}"
                              + (", the adjudicator" if s is not None and s.adjudicator else "")
                              + (". Blinded reading: the model and other reviewers' labels "
                                 "are hidden" if blinded else "")
                              + ". Review ▸ Switch reviewer… to change.")

    def refuses(self, token: str) -> bool:
        """Blinded: Enter/Space would confirm a prediction nobody has seen."""
        return self.blinded and token.lower() in BLIND_TOKENS and self._refused()

    def refuses_key(self, key) -> bool:
        return self.blinded and key in BLIND_KEYS and self._refused()

    def _refused(self) -> bool:
        keys = key_range(self.c.dock.taxonomy).split(" ")[0]  # "1–8" for BreakHis
        self.w.status.showMessage(REFUSED.format(keys=keys), 8000)
        return True

    # -- switching reviewer ---------------------------------------------------------------
    def choose_reviewer(self) -> None:
        known = list(self.state.reviewers) if self.state else []
        dlg = ReviewerDialog(self.reviewer, known, self.w)
        if dlg.exec():
            self.switch_reviewer(*dlg.choice())

    def switch_reviewer(self, name: str, role: str | None = None) -> bool:
        """Act as ``name`` from now on (saved in the settings); ``role`` ("reader" or
        "adjudicator") is stored in the open store. Reopens the slide as that reviewer."""
        from pvdesk.errors import StoreError
        from pvdesk.review.team import check_reviewer

        try:
            name = check_reviewer(name, "Reviewer not switched")
        except StoreError as exc:
            self.w.status.showMessage(str(exc), 10000)
            return False
        if role not in (None, READER, ADJUDICATOR):
            raise ValueError(f"unknown role {role!r}")
        if self.w.runs.running:
            self.w.status.showMessage("Reviewer not switched: finish or cancel the run "
                                      "first.", 8000)
            return False
        old = self.reviewer
        ctx = self.c.ctx
        if role is not None and ctx is not None:
            self.c._submit(lambda: ctx.ensure_store(create=True).set_role(name, role),
                           then=self._on_role_stored, ctx=ctx)
        elif role is not None:
            self.w.status.showMessage("Role not stored: open a slide or a review project "
                                      "first.", 8000)
        self.w.settings.reviewer = name
        self.w._save_settings()
        self._announce = f"Reviewer switched: {old} → {name}"
        self.w.status.showMessage(self._announce, 10000)
        if self.w.opened is not None:
            self.c.on_opened(self.w.opened)  # the queue, outlines and undo of this reviewer
        else:
            self._apply()
        return True

    def _after_settings(self) -> None:
        name = self.c._reviewer()
        if self.state is None or name == self.state.reviewer:
            return
        if not self.switch_reviewer(name):
            self.w.settings.reviewer = self.state.reviewer  # still the one acting
            self.w._save_settings()

    def _on_role_stored(self, ctx, result, error) -> None:
        if error is not None:
            self.w.status.showMessage(f"Role NOT stored: {error}", 10000)

    # -- blinded reading ------------------------------------------------------------------
    def choose_reading(self) -> None:
        s = self.state or TeamState(self.reviewer)
        dlg = ReadingDialog(s.blinded_setting, s.queue_order, s.queue_seed, self.w)
        if dlg.exec():
            self.set_reading(*dlg.values())

    def set_reading(self, blinded: bool, order: str = "random", seed: int = 1) -> bool:
        """Store the project's reading settings (audited) and reopen the slide under them."""
        ctx = self.c.ctx
        if ctx is None or self.w.opened is None:
            self.w.status.showMessage("Open a slide or a review project first.", 8000)
            return False
        self.c._submit(lambda: save_reading_settings(ctx.ensure_store(create=True), blinded,
                                                     order, seed),
                       then=self._on_reading_stored, ctx=ctx)
        return True

    def _on_reading_stored(self, ctx, result, error) -> None:
        if error is not None:
            self.w.status.showMessage(f"Reading settings NOT stored: {error}", 10000)
            return
        if ctx is self.c.ctx and self.w.opened is not None:
            self.c.on_opened(self.w.opened)

    # -- merging --------------------------------------------------------------------------
    def choose_merge(self) -> None:
        inputs, _ = QFileDialog.getOpenFileNames(
            self.w, "Review projects to merge", str(Path.home()), "Review stores (*.pvdb)")
        if not inputs:
            return
        out, _ = QFileDialog.getSaveFileName(
            self.w, "Merged review project", str(Path(inputs[0]).parent / "merged.pvdb"),
            "Review stores (*.pvdb)")
        if out:
            self.merge_to(Path(out).with_suffix(".pvdb"), [Path(p) for p in inputs])

    def merge_to(self, out: Path, inputs: list[Path]) -> bool:
        from pvdesk.app.team import merge_projects

        if self.tasks.busy:
            self.w.status.showMessage("A merge is running.", 6000)
            return False
        open_now = self.c.store.path if self.c.store is not None else None
        if open_now is not None and Path(open_now).resolve() == Path(out).resolve():
            self.w.status.showMessage(f"Not merged: {out} is open for review here; merge "
                                      "into another file, or open another project first.",
                                      15000)
            return False
        self.w.status.showMessage(f"Merging {len(inputs)} review projects into {out}…")
        self.tasks.start(merge_projects, out, inputs,
                         on_done=lambda text: self._on_merged(text, out),
                         on_error=self._on_merge_failed)
        return True

    def _on_merged(self, text: str, out: Path | None = None) -> None:
        self.last_merge = text
        self.w.status.showMessage(text, 15000)
        if out is not None:
            self._merged = Path(out)  # the panel shows what the merge made
            self.refresher.changed()

    def _on_merge_failed(self, exc) -> None:
        self.last_merge = f"Not merged: {describe_error(exc, 'merge')}"
        self.w.status.showMessage(self.last_merge, 15000)

    # -- agreement ------------------------------------------------------------------------
    def compute(self) -> bool:
        """Compute now (the Compute button), into the shown panel; one already running is
        followed by this one."""
        if self._subject() is None:
            self.panel.show_error("no review store is open.")
            return False
        self.dock_widget.show()
        self.dock_widget.raise_()
        self.refresher.force()
        return True

    def _store_changed(self) -> None:
        self._merged = None  # back to the open store's figures
        self.refresher.changed()

    def _subject(self) -> tuple[Path, int | None] | None:
        """The store the panel's figures are of, and the run (None: every run)."""
        if self._merged is not None:
            return self._merged, None
        ctx, s = self.c.ctx, self.c.session
        if ctx is None or ctx.store is None:
            return None
        return Path(ctx.store.path), s.run_id if s else None

    def _start_figures(self) -> bool:
        """One computation on the agreement thread (the refresher's ``start``)."""
        from pvdesk.app.team import panel_figures

        subject = self._subject()
        if subject is None:
            self.panel.show_error("no review store is open.")
            return False
        path, run_id = subject
        name = path.name + (" (the merge's output)" if path == self._merged else "")
        at = time.strftime("%H:%M:%S")  # when the store is read

        def done(r) -> None:
            f = r.figures
            self.panel.show_figures(f.summary, f.rows, f.confusions, at=at,
                                    decisions=r.decisions, source=name)
            self.refresher.finished()

        def failed(exc) -> None:
            self.panel.show_error(describe_error(exc, "agreement"), at=at)
            self.refresher.finished()

        self.panel.busy()
        self.figure_tasks.start(panel_figures, path, run_id, on_done=done, on_error=failed)
        return True

    def _on_panel_shown(self, visible: bool) -> None:
        """View ▸ Team: computed when shown if anything changed while it was hidden (a
        store opened is a change)."""
        if visible and not self._tabbed:
            self._tabbed = True  # (tabbed only once shown: a hidden tab group leaves a
            self.w.tabifyDockWidget(self.w.overlay_dock, self.dock_widget)  # stray tab bar)
            self.dock_widget.raise_()
        self.refresher.set_visible(visible)

    def shutdown(self) -> None:
        self.refresher.timer.stop()
        self.tasks.shutdown()
        self.figure_tasks.shutdown()
