"""The search box: a phrase ("mucin pools") against the shown run's stored embeddings.

Off the GUI thread (``Tasks``): the run's CLIP bundle's text tower is built once
(pvdesk.text_search), the phrase is encoded as a zero-shot class is, and its cosine with
every tile's stored embedding comes back as a small cell image painted over the slide
(:class:`SearchLayer`), faint to bright from the lowest to the highest cosine; the best
tiles join the review selection so one key labels them. An empty search clears it.
Needs a CLIP run with embeddings kept; no re-run of the model.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QRectF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLineEdit

from pvdesk.ui.background import Tasks, describe_error
from pvdesk.ui.glossary import tip

BEST = 24  # best tiles put in the selection


class SearchLayer:
    def __init__(self):
        self.image: QImage | None = None
        self.extent: tuple[int, int] | None = None  # level-0 (width, height) the cells cover

    def set(self, rgba: np.ndarray, extent) -> None:
        self._buf = np.ascontiguousarray(rgba)
        h, w = self._buf.shape[:2]
        self.image = QImage(self._buf.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        self.extent = extent

    def clear(self) -> None:
        self.image = self.extent = None

    def paint(self, p, vp) -> None:
        if self.image is None:
            return
        sx, sy = vp.to_screen(0, 0)
        p.drawImage(QRectF(sx, sy, self.extent[0] * vp.scale, self.extent[1] * vp.scale),
                    self.image)


class TextSearchAction(QObject):
    def __init__(self, controller, toolbar):
        super().__init__(controller)
        self.c = controller
        self.tasks = Tasks(self, name="pvdesk-text-search")
        self._encoders: dict = {}
        self._stores: dict = {}
        self.last = None  # (phrase, QueryResult) of the last search (tests)
        self.layer = SearchLayer()
        controller.w.view.add_layer(self.layer)
        self.box = QLineEdit()
        self.box.setPlaceholderText("Search in words, e.g. mucin pools")
        self.box.setClearButtonEnabled(True)
        self.box.setMaximumWidth(320)
        tip(self.box, "clip", "embeddings", before=(
            "Type what you are looking for and press Enter: the slide lights up where the "
            "tiles look most like the words, and the best tiles are selected. Needs a run of "
            "a CLIP bundle with embeddings kept. Empty: clear."))
        self.box.returnPressed.connect(self.start)
        toolbar.addSeparator()
        toolbar.addWidget(self.box)

    def _say(self, text: str, ms: int = 8000) -> None:
        self.c.w.status.showMessage(text, ms)

    def clear(self) -> None:
        self.layer.clear()
        self.c.w.view.update()

    def start(self) -> None:
        phrase = " ".join(self.box.text().split())[:300]
        if not phrase:
            self.clear()
            return
        s, store = self.c.session, self.c.store
        if s is None or store is None or s.run_id is None:
            self._say("Search: run a CLIP model on this slide first (with embeddings kept).")
            return
        if self.tasks.busy:
            self._say("Search: still working on the last phrase…", 3000)
            return
        run = store.run(s.run_id)
        folders = tuple(getattr(self.c.w.settings, "model_folders", ()) or ())
        self._say(f"Searching for “{phrase}” with {run.bundle_name}…", 0)
        self.tasks.start(self._search, str(store.path), s.run_id, s.slide_id, run.bundle_name,
                         folders, phrase, on_done=lambda r: self._done(s, phrase, r),
                         on_error=self._failed)

    def _search(self, path, run_id, slide_id, bundle_name, folders, phrase):
        from pvdesk.app.similar import SimilarTiles
        from pvdesk.colormaps import colormap_layer
        from pvdesk.models import resolve_bundle
        from pvdesk.review.store import ReviewStore
        from pvdesk.text_search import load_text_encoder, query_run, value_cells

        key = (bundle_name, folders)
        enc = self._encoders.get(key)
        if enc is None:
            enc = self._encoders[key] = load_text_encoder(resolve_bundle(bundle_name,
                                                                         list(folders)))
        store = self._stores.get(path)
        if store is None:
            store = self._stores[path] = ReviewStore(path, readonly=True)
        SimilarTiles(store).matrix(run_id, slide_id)  # a clear error without embeddings
        result = query_run(store, run_id, enc.embed([phrase]), [phrase], slide_id)
        recs = [r for r in result.records.values() if r.tile_x is not None]
        stride = int(store.run(run_id).settings.get("stride") or recs[0].tile_w)
        extent = (max(r.tile_x + r.tile_w for r in recs), max(r.tile_y + r.tile_h for r in recs))
        cells = value_cells(result, 0, stride, extent)
        lo, hi = np.nanmin(cells), np.nanmax(cells)
        norm = (cells - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(cells), 1.0, np.nan)
        rgba = np.asarray(colormap_layer(norm, "viridis", 0.7))
        rows, cols = cells.shape
        return result, rgba, (cols * stride, rows * stride), (lo, hi)

    def _done(self, session, phrase, answer) -> None:
        result, rgba, extent, (lo, hi) = answer
        self.last = (phrase, result)
        self.layer.set(rgba, extent)
        s = self.c.session
        if s is session:
            best = [r.tile_id for r, _ in result.best(0, BEST) if r.tile_id in s.all]
            s.selection.clear()
            s.toggle(best)
            self.c.sync.refresh(center=False)
        self.c.w.view.update()
        self._say(f"“{phrase}”: brighter tiles look more like it (cosine {lo:.2f} to {hi:.2f}); "
                  f"the best {min(BEST, len(result.tile_ids))} are selected. Empty the box "
                  "to clear.", 15000)

    def _failed(self, exc) -> None:
        self._say(describe_error(exc, "Search"), 12000)

    def shutdown(self) -> None:
        self.tasks.shutdown(10.0)
        for st in self._stores.values():
            st.close()
        self._stores.clear()
        self._encoders.clear()
