"""The heatmap overlay: frames from the application layer's HeatmapService, drawn on the view.

Heatmaps are accumulated and rendered off the GUI thread (pvdesk.app.heatmap_service); this
module only turns each ready frame into an image, draws it, answers hover questions and
keeps the Heatmap panel in step. The tile under review is left untinted so its tissue can
be judged as it is.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF, Signal
from PySide6.QtGui import QColor, QImage, QPen, QRegion

from pvdesk.app.heatmap_service import HeatmapService
from pvdesk.heatmap import ARGMAX, ROLLUP, HeatmapGrid
from pvdesk.taxonomy import Taxonomy, taxonomy_of
from pvdesk.ui.background import Relay
from pvdesk.ui.overlay_panel import OverlayPanel


def _label(name: str, taxonomy: Taxonomy) -> str:
    try:
        return taxonomy.display(name)
    except KeyError:
        return name.capitalize()


BLIND_NOTE = ("<b>Blinded reading</b>: the heatmap and the model's probabilities are hidden "
              "while you review (Review ▸ Blinded reading…).")


class HeatmapLayer:
    """Draws one RGBA image over the whole slide (nearest-neighbour: cells stay crisp)."""

    def __init__(self):
        self.image = None  # QImage (premultiplied ARGB)
        self.visible = True
        self.hover_rect: tuple[float, float, float, float] | None = None  # level-0 x, y, w, h
        self.hole: tuple[float, float, float, float] | None = None  # level-0 rect left clear

    def paint(self, painter, vp) -> None:
        if self.image is None or not self.visible:
            return
        sx, sy = vp.to_screen(0, 0)
        if self.hole is not None:
            x, y, w, h = self.hole
            hx, hy = vp.to_screen(x, y)
            clip = QRegion(0, 0, int(vp.view_w), int(vp.view_h)).subtracted(
                QRegion(int(hx), int(hy), max(1, int(w * vp.scale)), max(1, int(h * vp.scale))))
            painter.save()
            painter.setClipRegion(clip)
        painter.drawImage(QRectF(sx, sy, vp.slide_w * vp.scale, vp.slide_h * vp.scale),
                          self.image)
        if self.hole is not None:
            painter.restore()
        if self.hover_rect is not None:
            x, y, w, h = self.hover_rect
            hx, hy = vp.to_screen(x, y)
            r = QRectF(hx, hy, w * vp.scale, h * vp.scale)
            painter.setPen(QPen(QColor(0, 0, 0, 200), 3))
            painter.drawRect(r)
            painter.setPen(QPen(QColor(255, 255, 255, 230), 1))
            painter.drawRect(r)


def frame_image(frame) -> QImage:
    """A HeatmapService frame (premultiplied RGBA array) as a QImage (one copy)."""
    h, w = frame.rgba.shape[:2]
    q = QImage(frame.rgba.data, w, h, w * 4, QImage.Format.Format_RGBA8888_Premultiplied)
    # one conversion per frame into the raster engine's native format (which also owns the
    # pixels: the array may go), not one per paint
    return q.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


class OverlayController(QObject):
    untrained_changed = Signal(list)
    visible_changed = Signal(bool)
    frame_shown = Signal(object)  # the Frame now on screen (None: no heatmap)

    def __init__(self, view, settings, parent=None):
        super().__init__(parent)
        self.view = view
        self.panel = OverlayPanel(settings.overlay_opacity)
        self.layer = HeatmapLayer()
        view.add_layer(self.layer)
        self.service = HeatmapService()
        self.relay = Relay(self)
        self.service.frame.connect(self.relay.wrap(self._on_frame))
        self.service.failed.connect(self.relay.wrap(self._on_failed))
        self.bundles: dict = {}
        self.info = None
        self.state = "idle"
        self.tiles_done = 0
        self.frame = None
        self._layers_for = None
        self._settings = settings
        self.blinded = False  # blinded reading: no heatmap, no probabilities, controls off
        self.panel.changed.connect(self._on_panel)
        self.panel.visible.toggled.connect(self._on_visible_box)

    @property
    def heatmaps(self) -> dict[str, HeatmapGrid]:
        return self.service.heatmaps

    # run lifecycle ---------------------------------------------------------------
    def clear(self) -> None:
        self.service.clear()
        self.bundles.clear()
        self.info = None
        self.state = "idle"
        self.tiles_done = 0
        self._layers_for = None
        self.layer.image = None
        self.frame = None
        self.panel.set_models([], [])
        self.panel.hover.setText("Run a model (Analysis ▸ Run model…) to see heatmaps.")
        self.untrained_changed.emit([])
        self.view.update()

    def begin(self, info) -> None:
        """A run has its grid (its heatmaps were begun on the run's thread)."""
        self.info, self.state = info, "running"
        self.tiles_done = 0
        self.bundles = {b.name: b for b in info.bundles}
        first = info.bundles[0]
        self._layers_for = first.name
        self.panel.set_models([b.name for b in info.bundles], first.classes, taxonomy_of(first))
        self._send_params()
        self.panel.hover.setText(f"{len(info.grid.tiles)} tissue tiles to classify.")
        self.untrained_changed.emit(info.untrained)
        if self.blinded:
            self.set_blinded(True)

    def show_stored(self, info, batch) -> None:
        """A stored run reopened: its heatmap without running the model again."""
        size = info.slide_size if info.slide_size[0] else None
        self.service.begin(info.grid, info.bundles, size)
        self.begin(info)
        self.service.add(batch)
        self.add_progress(len(batch.tiles))
        self.finish("done")

    def add_progress(self, done: int) -> None:
        self.tiles_done = int(done)

    def on_progress(self, p) -> None:
        self.tiles_done = p.done - p.unreadable

    def finish(self, state: str) -> None:
        self.state = state
        self.service.finish()
        if self.info is not None and not self.blinded:
            verb = "Finished" if state == "done" else "Stopped"
            self.panel.hover.setText(f"{verb}: {self.summary()}. Hover a tile to see its "
                                     "probabilities.")

    def summary(self) -> str:
        if self.info is None:
            return "no tiles classified"
        total = len(self.info.grid.tiles)
        kind = "tissue tiles" if self.info.grid.stride is not None else "images"
        return f"{self.tiles_done} of {total} {kind} classified"

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the heatmap thread to render what it has (tests, screenshots); the
        frame then arrives with the next turn of the event loop."""
        return self.service.flush(timeout)

    # display -----------------------------------------------------------------------
    def current(self) -> tuple[HeatmapGrid | None, str]:
        p = self.panel.params
        return self.heatmaps.get(p["model"]), p["layer"] or ARGMAX

    def _send_params(self) -> None:
        p = self.panel.params
        self.service.set_params(model=p["model"], layer=p["layer"] or ARGMAX,
                                colormap=p["colormap"], opacity=p["opacity"],
                                threshold=p["threshold"])

    def _on_panel(self) -> None:
        hm, layer = self.current()
        name = self.panel.params["model"]
        if name in self.bundles:
            classes = list(self.bundles[name].classes)
            tax = taxonomy_of(self.bundles[name])
            if self._layers_for != name:
                self._layers_for = name
                self.panel.set_layers(classes, tax)
            # a patch folder has no heatmap, but its grid is coloured by class: show those
            self.panel.update_legend(self.current()[1] if hm is not None else ARGMAX, classes,
                                     tax)
        self._settings.overlay_opacity = self.panel.params["opacity"]
        self.layer.visible = self.panel.params["visible"] and not self.blinded
        self._send_params()
        self.view.update()

    def render_now(self) -> None:
        """Ask the heatmap thread for a frame of the current layer."""
        self._send_params()

    def _on_frame(self, frame) -> None:
        self.frame = frame
        self.layer.image = None if frame is None else frame_image(frame)
        self.view.update()
        self.frame_shown.emit(frame)

    def _on_failed(self, message: str) -> None:
        self.panel.hover.setText(message)

    def set_visible(self, visible: bool) -> None:
        if self.panel.visible.isChecked() != visible:
            self.panel.visible.setChecked(visible)  # emits toggled -> _on_visible_box

    def toggle(self) -> None:
        self.set_visible(not self.panel.visible.isChecked())

    def set_blinded(self, on: bool) -> None:
        """Blinded reading: the heatmap off, its controls disabled with a note, no
        probabilities on hover; off again: as the panel says."""
        self.blinded = bool(on)
        self.layer.visible = self.panel.params["visible"] and not self.blinded
        self.layer.hover_rect = None
        self.view.setToolTip("")
        self.panel.setEnabled(not self.blinded and self.panel.model.count() > 0)
        if self.blinded:
            self.panel.hover.setText(BLIND_NOTE)
        elif self.info is not None:
            self.panel.hover.setText(f"{self.summary()}. Hover a tile to see its "
                                     "probabilities.")
        self.view.update()

    def _on_visible_box(self, visible: bool) -> None:
        self.layer.visible = visible and not self.blinded
        self.view.update()
        self.visible_changed.emit(visible)

    def shutdown(self) -> None:
        self.relay.close()
        self.service.close()

    # hover -------------------------------------------------------------------------
    def hover(self, x: float, y: float, inside: bool) -> None:
        hm, _ = self.current()
        if hm is None or self.blinded:
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
        tax = taxonomy_of(self.bundles[name])
        lines = [f"{_label(c, tax)}: {v:.2f}" for c, v in ranked]
        tx, ty = rect[0], rect[1]
        self.panel.hover.setText(f"Tile at x {tx}, y {ty} (level-0 px) — {name}{warn}<br>"
                                 + "<br>".join(lines))
        self.view.setToolTip("\n".join(lines[:4]))

    def tile_values(self, x: float, y: float) -> dict[str, float] | None:
        hm, _ = self.current()
        return hm.at(x, y) if hm is not None and not self.blinded else None


__all__ = ["HeatmapLayer", "OverlayController", "ROLLUP", "ARGMAX"]
