"""Keeps the review widgets in step with the ReviewSession: the dock's queue and counts, the
slide view's outlines and centring, the patch grid, the status bar; and turns the user's
picks in the queue table and the patch grid back into session calls."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QObject

from pvdesk.ui.patch_grid import GridItem

MIN_TILE_PX = 120  # a tile chosen from the queue is shown at least this large


class ReviewSync(QObject):
    def __init__(self, controller):
        super().__init__(controller)
        self.c = controller
        self._busy = False
        self._runs_key = None  # (session, number of runs in the store) the combo shows
        d = controller.dock
        d.table.selectionModel().currentRowChanged.connect(self._on_table_row)
        g = controller.grid
        g.selectionModel().currentChanged.connect(self._on_grid_current)
        g.selectionModel().selectionChanged.connect(self._on_grid_selection)

    @property
    def session(self):
        return self.c.session

    def clear(self) -> None:
        self.c.layer.session, self.c.layer.current, self.c.layer.selected = None, None, []
        self.c.w.overlay.layer.hole = None
        self.c.dock.model.set_entries([])
        self.c.dock.set_runs([], None)
        self._runs_key = None
        self.c.dock.show_diagnosis(None, "", None, None)
        self.c.dock.show_patient(None)
        self.c.dock.show_selection(0)
        self.refresh_status()
        self.c.w.view.update()

    # -- session -> widgets -----------------------------------------------------------------
    def refresh(self, center: bool = False) -> None:
        """Apply what changed in the session since the last refresh (its Delta): only
        those queue rows, the current tile, counts; the view repaints what is visible."""
        s, c = self.session, self.c
        if s is None:
            self.clear()
            return
        self._busy = True
        try:
            d = s.take_delta()
            model = c.dock.model
            if d.reset or model.entries is not s.entries:
                model.set_entries(s.entries)
                d.current = True
            else:
                if d.appended:
                    model.append_rows(s.entries)
                model.rows_changed(d.rows)
            if d.current:
                table = c.dock.table
                if s.index >= 0:
                    idx = model.index(s.index, 0)
                    table.selectionModel().setCurrentIndex(
                        idx, QItemSelectionModel.SelectionFlag.ClearAndSelect
                        | QItemSelectionModel.SelectionFlag.Rows)
                    table.scrollTo(idx)
                else:
                    table.clearSelection()
            c.layer.session = s
            c.layer.current = s.current
            c.layer.selected = [s.all[t] for t in s.selection if t in s.all]
            cur = s.current
            c.w.overlay.layer.hole = (None if cur is None or cur.tile_x is None
                                      else (cur.tile_x, cur.tile_y, cur.tile_w, cur.tile_h))
            c.dock.show_selection(len(s.selection))
            if c.ctx is not None and c.ctx.folder:
                if d.reset or d.rows or d.appended or d.current:
                    self._grid()
            elif center and s.current is not None and s.current.tile_x is not None:
                self._center(s.current)
            if d.reset or d.outlines or d.current or center:
                c.w.view.update()  # new rows alone (a run streaming in) draw nothing
            if d.counts or d.reset or d.current:
                self.refresh_status()
        finally:
            self._busy = False

    def refresh_runs(self) -> None:
        """The run chooser: the store's runs on this slide, read on the writer thread (the
        query walks the slide's predictions) when the session or its runs change."""
        from pvdesk.review.project import slide_runs

        s = self.session
        if s is None:
            return
        store, slide_id = s.store, s.slide_id
        self.c._submit(lambda: (store.runs(), {r.run_id for r in slide_runs(store, slide_id)}),
                       then=self._on_runs, ctx=s)

    def _on_runs(self, s, result, error) -> None:
        if s is not self.session or error is not None:
            return
        all_runs, mine = result
        key = (id(s), len(all_runs), s.run_id)
        if self._runs_key != key:
            self._runs_key = key
            self._busy = True
            try:
                self.c.dock.set_runs([r for r in all_runs if r.run_id in mine
                                      or r.run_id == s.run_id], s.run_id)
            finally:
                self._busy = False

    def refresh_status(self) -> None:
        s, c = self.session, self.c
        store = s.store if s is not None else (c.ctx.store if c.ctx else None)
        counts = s.counts_text() if s is not None else ""
        where = f"Every action is stored at once in {store.path}" if store is not None else ""
        pending = getattr(s, "pending", 0) if s is not None else 0
        error = getattr(s, "last_error", None) if s is not None else None
        if error:
            state = "NOT stored ✗"
        elif pending:
            state = "storing…"
        else:
            state = "stored ✓"
        c.store_label.setText(f"{counts} · {state}" if counts else "")
        c.store_label.setMinimumWidth(c.store_label.sizeHint().width())
        c.store_label.setToolTip(f"{where}\nLast error: {error}" if error else where)
        c.dock.counts.setText(counts or "No predictions yet: run a model (Analysis ▸ Run model…).")
        c.dock.where.setText(f"Stored in {store.path.name}" if store is not None else "")
        c.dock.where.setToolTip(where)
        can_undo = bool(s is not None and (getattr(s, "can_undo", False) or pending))
        can_redo = bool(s is not None and getattr(s, "can_redo", False))
        for w in (c.dock.undo, c.acts["undo"]):
            w.setEnabled(can_undo)
        for w in (c.dock.redo, c.acts["redo"]):
            w.setEnabled(can_redo)

    def _center(self, rec) -> None:
        view = self.c.w.view
        vp = view.vp
        if vp is None:
            return
        if rec.tile_w * vp.scale < MIN_TILE_PX:
            view.set_scale(min(vp.view_w, vp.view_h) / (rec.tile_w * 3.0))
        view.center_on(rec.tile_x + rec.tile_w / 2, rec.tile_y + rec.tile_h / 2)

    def _grid(self) -> None:
        s, grid = self.session, self.c.grid
        items = [GridItem(r.patch_path or r.source, r.folder_class, r) for r in s.entries]
        grid.patches.update_items(items)
        sm = grid.selectionModel()
        if s.selection:
            rows = [i for i, r in enumerate(s.entries) if r.tile_id in s.selection]
            sm.clearSelection()
            for i in rows:
                sm.select(grid.patches.index(i), QItemSelectionModel.SelectionFlag.Select)
        if s.index >= 0:
            idx = grid.patches.index(s.index)
            flag = (QItemSelectionModel.SelectionFlag.NoUpdate if s.selection
                    else QItemSelectionModel.SelectionFlag.ClearAndSelect)
            sm.setCurrentIndex(idx, flag)
            grid.scrollTo(idx)

    # -- widgets -> session -----------------------------------------------------------------
    def _on_table_row(self, current, previous) -> None:
        s = self.session
        if self._busy or s is None or not current.isValid():
            return
        s.selection.clear()
        s.goto(current.row())
        self.refresh(center=True)

    def _on_grid_current(self, current, previous) -> None:
        s = self.session
        if self._busy or s is None or not current.isValid() or current.row() >= len(s.entries):
            return
        s.goto(current.row())
        self.refresh(center=False)

    def _on_grid_selection(self, *_) -> None:
        s = self.session
        if self._busy or s is None:
            return
        rows = [i.row() for i in self.c.grid.selectionModel().selectedIndexes()]
        ids = {s.entries[r].tile_id for r in rows if r < len(s.entries)}
        s.selection = ids if len(ids) > 1 else set()
        self.c.dock.show_selection(len(s.selection))
