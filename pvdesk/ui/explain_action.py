"""`E` in review mode: what the model looked at in the tile under review (Grad-CAM).

The map is computed off the GUI thread (``Tasks``): the run's bundle is loaded once into
its own float32 copy (pvdesk.explain.Explainer), the tile is read at full resolution through
its own slide handle, and the finished map comes back as a small RGBA image that
:class:`ExplainLayer` paints over that tile with its own opacity (a slider in the status
bar). The map belongs to its tile: moving to another tile hides it; E again hides it.
Also Review ▸ Why this tile? and a toolbar button.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolBar, QToolButton, QWidget

from pvdesk.ui.background import Tasks, describe_error

DEFAULT_OPACITY = 0.55


class ExplainLayer:
    """Paints the map over its tile (level-0 rectangle) while that tile is current."""

    def __init__(self, is_current):
        self.is_current = is_current  # tile id -> bool
        self.tile_id: int | None = None
        self.rect: tuple[int, int, int, int] | None = None
        self.cam: np.ndarray | None = None  # (S, S) float32 in [0, 1]
        self.opacity = DEFAULT_OPACITY
        self.image: QImage | None = None

    def set(self, tile_id: int, rect, cam: np.ndarray) -> None:
        self.tile_id, self.rect, self.cam = tile_id, rect, cam
        self._render()

    def clear(self) -> None:
        self.tile_id = self.rect = self.cam = self.image = None

    @property
    def shown(self) -> bool:
        return self.image is not None and self.tile_id is not None and self.is_current(
            self.tile_id)

    def set_opacity(self, value: float) -> None:
        self.opacity = float(value)
        self._render()

    def _render(self) -> None:
        if self.cam is None:
            self.image = None
            return
        from pvdesk.explain import heat_rgba

        rgba = np.ascontiguousarray(np.asarray(heat_rgba(self.cam, self.opacity)))
        h, w = rgba.shape[:2]
        self._buf = rgba  # QImage does not own the bytes
        self.image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)

    def paint(self, p, vp) -> None:
        if not self.shown:
            return
        x, y, w, h = self.rect
        sx, sy = vp.to_screen(x, y)
        p.save()
        p.setRenderHint(p.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(QRectF(sx, sy, w * vp.scale, h * vp.scale), self.image)
        p.restore()


class ExplainAction(QObject):
    def __init__(self, controller, similar=None):
        super().__init__(controller)
        self.c = controller
        w = controller.w
        self.tasks = Tasks(self, name="pvdesk-explain")
        self._explainers: dict[tuple, object] = {}
        self.last = None  # the last Explanation (tests, status)
        self.layer = ExplainLayer(self._is_current)
        w.view.add_layer(self.layer)
        self.panel = QWidget()
        row = QHBoxLayout(self.panel)
        row.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(round(DEFAULT_OPACITY * 100))
        self.slider.setFixedWidth(90)
        self.slider.setToolTip("How strongly the map covers the tile (its own opacity, "
                               "separate from the heatmap's).")
        self.slider.valueChanged.connect(self._on_opacity)
        close = QToolButton()
        close.setText("×")
        close.setToolTip("Hide the map (E)")
        close.clicked.connect(self.hide)
        for wid in (self.caption, QLabel("opacity"), self.slider, close):
            row.addWidget(wid)
        w.status.addPermanentWidget(self.panel)
        self.panel.hide()
        tip = ("Why this tile? Shows, over the tile under review, where the model looked when "
               "it gave its class: brighter means that area raised the class's score more "
               "(Grad-CAM). Computed in the background; E again hides it.")
        self.action = QAction("Why this tile?\tE", w)
        self.action.setToolTip(tip)
        self.action.triggered.connect(self.start)
        self.similar_action = QAction("Select similar tiles\tS", w)
        self.similar_action.setToolTip("Select the tiles most like this one (or the selection), "
                                       "so one label key labels them all; Esc clears.")
        if similar is not None:
            self.similar_action.triggered.connect(similar.start)
        menu = getattr(w, "review_menu", None)
        if menu is not None:
            menu.addSeparator()
            menu.addAction(self.action)
            menu.addAction(self.similar_action)
        self.toolbar = QToolBar("Why this tile", w)
        self.toolbar.setObjectName("why-toolbar")
        self.toolbar.addAction(self.action)
        self.toolbar.addAction(self.similar_action)
        for a in (self.action, self.similar_action):  # button text without the key column
            b = self.toolbar.widgetForAction(a)
            if b is not None:
                b.setText(a.text().split("\t")[0] + f" ({a.text().split(chr(9))[1]})")
        w.addToolBar(self.toolbar)

    def _is_current(self, tile_id: int) -> bool:
        s = self.c.session
        if s is None or s.current is None or s.current.tile_id != tile_id:
            if self.panel.isVisible():
                self.panel.hide()
            return False
        return True

    def _say(self, text: str, ms: int = 8000) -> None:
        self.c.w.status.showMessage(text, ms)

    def _on_opacity(self, v: int) -> None:
        self.layer.set_opacity(v / 100.0)
        self.c.w.view.update()

    def hide(self) -> None:
        self.layer.clear()
        self.panel.hide()
        self.c.w.view.update()

    def start(self) -> bool:
        s, w = self.c.session, self.c.w
        cur = s.current if s is not None else None
        if cur is not None and self.layer.shown and self.layer.tile_id == cur.tile_id:
            self.hide()  # E toggles
            return True
        if cur is None or cur.tile_x is None or w.source is None:
            self._say("Why this tile?: choose a tile of a slide in review mode first.")
            return True
        if self.tasks.busy:
            self._say("Still computing the last map…", 3000)
            return True
        bundle_name = self.c.store.run(cur.run_id).bundle_name if self.c.store else cur.model
        folders = tuple(getattr(w.settings, "model_folders", ()) or ())
        self._say(f"Computing where {bundle_name} looked in this tile…", 0)
        rect = (int(cur.tile_x), int(cur.tile_y), int(cur.tile_w), int(cur.tile_h))
        self.tasks.start(self._explain, w.source, bundle_name, folders, rect,
                         on_done=lambda e: self._done(cur.tile_id, rect, e),
                         on_error=self._failed)
        return True

    def _explain(self, source, bundle_name: str, folders, rect):
        from pvdesk.explain import Explainer
        from pvdesk.models import resolve_bundle

        key = (bundle_name, folders)
        ex = self._explainers.get(key)
        if ex is None:
            ex = self._explainers[key] = Explainer(resolve_bundle(bundle_name, list(folders)))
        src = source.clone()
        try:
            x, y, w, h = rect
            tile = src.read_region((x, y), 0, (w, h)).convert("RGB")
        finally:
            src.close()
        return ex.explain(tile)

    def _done(self, tile_id: int, rect, e) -> None:
        self.last = e
        self.layer.set(tile_id, rect, e.cam)
        if not self.layer.shown:  # the reviewer moved on meanwhile
            self._say("The map is ready but the tile changed; press E again.", 5000)
            return
        name = e.class_name.replace("_", " ")
        untrained = " (untrained)" if not e.trained else ""
        self.caption.setText(f"Why: {name}, p {e.probs[e.class_index]:.2f}{untrained}")
        self.caption.setToolTip(f"Where {e.model} looked for {name}: brighter areas raised "
                                f"the score more (Grad-CAM, {e.seconds:.1f} s). E hides it.")
        self.panel.show()
        self.c.w.view.update()
        self.c.w.status.clearMessage()

    def _failed(self, exc) -> None:
        self._say(describe_error(exc, "Why this tile?"), 12000)

    def shutdown(self) -> None:
        self.tasks.shutdown(10.0)
        self._explainers.clear()
