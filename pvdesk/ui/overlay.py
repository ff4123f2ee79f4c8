"""The heatmap overlay: per-model HeatmapGrids (core) fed by run batches, drawn on the view.

Rendering goes through ``pvdesk.heatmap.render`` (or ``pvdesk.colormaps``) onto an image
the size of the slide's thumbnail, so edges follow the tissue mask; updates are coalesced
(at most one render per ``RENDER_MS``) so a fast run never floods the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, QTimer, Signal
from PySide6.QtGui import QColor, QPen

from pvdesk.colormaps import CLASS_COLOUR, colormap_layer
from pvdesk.heatmap import ARGMAX, ROLLUP, HeatmapGrid, fit_to, render
from pvdesk.taxonomy import subtype
from pvdesk.ui.overlay_panel import OverlayPanel

RENDER_MS = 150
MAX_OVERLAY_PX = 1024


def _label(name: str) -> str:
    try:
        return subtype(name).label
    except KeyError:
        return name.capitalize()


class HeatmapLayer:
    """Draws one RGBA image over the whole slide (nearest-neighbour: cells stay crisp)."""

    def __init__(self):
        self.image = None  # QImage (ARGB32)
        self.visible = True
        self.hover_rect: tuple[float, float, float, float] | None = None  # level-0 x, y, w, h

    def paint(self, painter, vp) -> None:
        if self.image is None or not self.visible:
            return
        sx, sy = vp.to_screen(0, 0)
        painter.drawImage(QRectF(sx, sy, vp.slide_w * vp.scale, vp.slide_h * vp.scale),
                          self.image)
        if self.hover_rect is not None:
            x, y, w, h = self.hover_rect
            hx, hy = vp.to_screen(x, y)
            r = QRectF(hx, hy, w * vp.scale, h * vp.scale)
            painter.setPen(QPen(QColor(0, 0, 0, 200), 3))
            painter.drawRect(r)
            painter.setPen(QPen(QColor(255, 255, 255, 230), 1))
            painter.drawRect(r)


def _qimage_rgba(img):
    from PySide6.QtGui import QImage

    img = img.convert("RGBA")
    q = QImage(img.tobytes(), img.width, img.height, img.width * 4,
               QImage.Format.Format_RGBA8888)
    return q.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


class OverlayController(QObject):
    untrained_changed = Signal(list)
    visible_changed = Signal(bool)

    def __init__(self, view, settings, parent=None):
        super().__init__(parent)
        self.view = view
        self.panel = OverlayPanel(settings.overlay_opacity)
        self.layer = HeatmapLayer()
        view.add_layer(self.layer)
        self.heatmaps: dict[str, HeatmapGrid] = {}
        self.bundles: dict = {}
        self.info = None
        self.state = "idle"
        self.tiles_done = 0
        self._layers_for = None
        self._settings = settings
        self._timer = QTimer(self, singleShot=True, interval=RENDER_MS)
        self._timer.timeout.connect(self.render_now)
        self.panel.changed.connect(self._on_panel)
        self.panel.visible.toggled.connect(self._on_visible_box)

    # run lifecycle ---------------------------------------------------------------
    def clear(self) -> None:
        self.heatmaps.clear()
        self.bundles.clear()
        self.info = None
        self.state = "idle"
        self.tiles_done = 0
        self._layers_for = None
        self.layer.image = None
        self.panel.set_models([], [])
        self.panel.hover.setText("Run a model (Analysis ▸ Run model…) to see heatmaps.")
        self.untrained_changed.emit([])
        self.view.update()

    def begin(self, info) -> None:
        """A run has its grid: one HeatmapGrid per bundle."""
        self.clear()
        self.info, self.state = info, "running"
        size = info.slide_size if info.slide_size[0] else None
        for b in info.bundles:
            self.bundles[b.name] = b
            if info.grid.stride is not None:  # a patch folder has no slide heatmap
                self.heatmaps[b.name] = HeatmapGrid(info.grid, b.classes, size=size)
        first = info.bundles[0]
        self._layers_for = first.name
        self.panel.set_models([b.name for b in info.bundles], first.classes)
        self.panel.hover.setText(f"{len(info.grid.tiles)} tissue tiles to classify.")
        self.untrained_changed.emit(info.untrained)

    def add_batch(self, result) -> None:
        readable = getattr(result, "readable", None)
        self.tiles_done += int(readable.sum()) if readable is not None else len(result.tiles)
        for name, hm in self.heatmaps.items():
            probs = result.probs.get(name)
            if probs is not None:
                hm.add(result.tiles, probs)
        if not self._timer.isActive():
            self._timer.start()

    def finish(self, state: str) -> None:
        self.state = state
        self.render_now()
        if self.info is not None:
            verb = "Finished" if state == "done" else "Stopped"
            self.panel.hover.setText(f"{verb}: {self.summary()}. Hover a tile to see its "
                                     "probabilities.")

    def summary(self) -> str:
        if self.info is None:
            return "no tiles classified"
        total = len(self.info.grid.tiles)
        kind = "tissue tiles" if self.info.grid.stride is not None else "images"
        return f"{self.tiles_done} of {total} {kind} classified"

    # display -----------------------------------------------------------------------
    def current(self) -> tuple[HeatmapGrid | None, str]:
        p = self.panel.params
        return self.heatmaps.get(p["model"]), p["layer"] or ARGMAX

    def _on_panel(self) -> None:
        hm, layer = self.current()
        name = self.panel.params["model"]
        if name in self.bundles:
            classes = list(self.bundles[name].classes)
            if self._layers_for != name:
                self._layers_for = name
                self.panel.set_layers(classes)
            # a patch folder has no heatmap, but its grid is coloured by class: show those
            self.panel.update_legend(self.current()[1] if hm is not None else ARGMAX, classes)
        self._settings.overlay_opacity = self.panel.params["opacity"]
        self.layer.visible = self.panel.params["visible"]
        self.render_now()

    def render_now(self) -> None:
        self._timer.stop()
        hm, layer = self.current()
        if hm is None:
            self.layer.image = None
            self.view.update()
            return
        self.layer.image = _qimage_rgba(self.render_pil(hm, layer))
        self.view.update()

    def render_pil(self, hm: HeatmapGrid, layer: str):
        """The current layer as a PIL RGBA image over the whole slide."""
        p = self.panel.params
        w, h = hm.size
        s = min(1.0, MAX_OVERLAY_PX / max(w, h))
        size = (max(1, round(w * s)), max(1, round(h * s)))
        if p["colormap"] != CLASS_COLOUR and layer != ARGMAX:
            cells = colormap_layer(hm.values(layer), p["colormap"], p["opacity"],
                                   p["threshold"])
            return fit_to(hm, cells, size)
        return render(hm, layer, opacity=p["opacity"], threshold=p["threshold"], size=size)

    def set_visible(self, visible: bool) -> None:
        if self.panel.visible.isChecked() != visible:
            self.panel.visible.setChecked(visible)  # emits toggled -> _on_visible_box

    def toggle(self) -> None:
        self.set_visible(not self.panel.visible.isChecked())

    def _on_visible_box(self, visible: bool) -> None:
        self.layer.visible = visible
        self.view.update()
        self.visible_changed.emit(visible)

    # hover -------------------------------------------------------------------------
    def hover(self, x: float, y: float, inside: bool) -> None:
        hm, _ = self.current()
        if hm is None:
            return
        probs = hm.at(x, y) if inside else None
        rect = None
        if probs is not None:
            r, c = hm.cell_of(x, y)
            rect = (c * hm.stride, r * hm.stride, hm.stride, hm.stride)
        if rect != self.layer.hover_rect:
            self.layer.hover_rect = rect
            self.view.update()
        if probs is None:
            self.panel.hover.setText("Under the cursor: no classified tile.")
            self.view.setToolTip("")
            return
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        name = self.panel.params["model"]
        warn = "" if self.bundles[name].trained else " <b>(UNTRAINED)</b>"
        lines = [f"{_label(c)}: {v:.2f}" for c, v in ranked]
        tx, ty = rect[0], rect[1]
        self.panel.hover.setText(f"Tile at x {tx}, y {ty} (level-0 px) — {name}{warn}<br>"
                                 + "<br>".join(lines))
        self.view.setToolTip("\n".join(lines[:4]))

    def tile_values(self, x: float, y: float) -> dict[str, float] | None:
        hm, _ = self.current()
        return hm.at(x, y) if hm is not None else None


__all__ = ["HeatmapLayer", "OverlayController", "ROLLUP", "ARGMAX"]
