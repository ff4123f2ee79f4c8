"""The heatmap dock: model and layer selectors, opacity, colormap, threshold, legend, hover.

Each control and each layer carries its plain words (pvdesk.ui.glossary) in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from pvdesk.colormaps import CLASS_COLOUR, COLORMAPS, lut
from pvdesk.heatmap import ARGMAX, ROLLUP
from pvdesk.taxonomy import GROUPS, colour_of, subtype
from pvdesk.ui.glossary import explain, form_row, tip


def layer_tip(layer: str) -> str:
    if layer == ARGMAX:
        return explain("class_map")
    if layer == ROLLUP:
        return "Blue: benign, orange: malignant.\n\n" + explain("rollup")
    if layer in GROUPS:
        return f"The {layer} score of each tile.\n\n" + explain("rollup", "probability")
    try:
        name = subtype(layer).label.lower()
    except KeyError:
        name = layer.replace("_", " ")
    return f"Each tile's probability of {name}.\n\n" + explain("probability")


def layer_title(layer: str) -> str:
    if layer == ARGMAX:
        return "Class map (most likely class)"
    if layer == ROLLUP:
        return "Benign / malignant roll-up"
    if layer in GROUPS:
        return f"P({layer})"
    try:
        s = subtype(layer)
        return f"{s.key}  {s.label}"
    except KeyError:
        return layer


class Legend(QWidget):
    """Swatches in the taxonomy's colours, or a gradient for one probability layer."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._entries: list[tuple[str, str]] = []  # (text, colour)
        self._gradient: tuple[list[str], str, str] | None = None  # stops, low, high labels

    def show_classes(self, classes) -> None:
        self._entries = [(layer_title(c), colour_of(c)) for c in classes]
        self._gradient = None
        self._relayout()

    def show_gradient(self, stops: list[str], low: str, high: str) -> None:
        self._entries, self._gradient = [], (stops, low, high)
        self._relayout()

    def _relayout(self) -> None:
        rows = len(self._entries) if self._entries else (2 if self._gradient else 0)
        self.setFixedHeight(max(4, rows * 20 + 6))
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(200, self.height())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        fm = p.fontMetrics()
        for i, (text, colour) in enumerate(self._entries):
            y = 3 + i * 20
            p.fillRect(QRectF(4, y + 2, 22, 14), QColor(colour))
            p.setPen(QColor("#808080"))  # white and black swatches stay visible
            p.drawRect(QRectF(4, y + 2, 21, 13))
            p.setPen(QColor("#222222") if self.palette().window().color().lightness() > 128
                     else QColor("#eeeeee"))
            p.drawText(32, y + 2 + fm.ascent(), text)
        if self._gradient:
            stops, low, high = self._gradient
            g = QLinearGradient(4, 0, self.width() - 4, 0)
            for i, c in enumerate(stops):
                g.setColorAt(i / max(1, len(stops) - 1), QColor(c))
            p.fillRect(QRectF(4, 4, self.width() - 8, 14), g)
            p.setPen(self.palette().windowText().color())
            p.drawText(4, 22 + fm.ascent(), low)
            p.drawText(self.width() - 4 - fm.horizontalAdvance(high), 22 + fm.ascent(), high)
        p.end()


class OverlayPanel(QWidget):
    changed = Signal()

    def __init__(self, opacity: float = 0.45, parent=None):
        super().__init__(parent)
        self.model = QComboBox()
        self.layer = QComboBox()
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(round(opacity * 100)))
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold_label = QLabel("0.00")
        self.visible = QCheckBox("Show heatmap (H)")
        self.visible.setChecked(True)
        self.legend = Legend()
        self.hover = QLabel("Run a model (Analysis ▸ Run model…) to see heatmaps.")
        self.hover.setWordWrap(True)
        self.hover.setTextFormat(Qt.TextFormat.RichText)
        self.hover.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.hover.setMinimumHeight(60)
        tip(self.hover, "probability", before="The tile under the mouse pointer: its "
            "probability for each class, highest first.")
        tip(self.threshold_label, "threshold")
        tip(self.visible, "layer", before="Show or hide the colours over the slide (key H).")

        form = QFormLayout()
        form_row(form, "Model", self.model, "bundle",
                 before="The model run whose results are painted over the slide.")
        form_row(form, "Layer", self.layer, "layer", "rollup", "class_map")
        form_row(form, "Colormap", self.colormap, "colormap")
        form_row(form, "Opacity", self.opacity, "opacity")
        form_row(form, "Threshold", self.threshold, "threshold")
        form.addRow("", self.threshold_label)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.visible)
        layout.addWidget(QLabel("Legend"))
        layout.addWidget(self.legend)
        layout.addWidget(self.hover, 1)
        for sig in (self.model.currentIndexChanged, self.layer.currentIndexChanged,
                    self.colormap.currentIndexChanged, self.opacity.valueChanged,
                    self.threshold.valueChanged, self.visible.toggled):
            sig.connect(self._emit)
        self.setEnabled(False)

    def _emit(self, *_) -> None:
        self.threshold_label.setText(f"hide below {self.threshold.value() / 100:.2f}")
        self.changed.emit()

    def set_models(self, names: list[str], classes: list[str]) -> None:
        """Fill the selectors for a run (blocking signals; one ``changed`` at the end)."""
        for combo in (self.model, self.layer):
            combo.blockSignals(True)
            combo.clear()
        for n in names:
            self.model.addItem(n, n)
        self.set_layers(classes)
        for combo in (self.model, self.layer):
            combo.blockSignals(False)
        self.setEnabled(bool(names))
        self._emit()

    def set_layers(self, classes: list[str]) -> None:
        current = self.layer.currentData()
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItem(layer_title(ARGMAX), ARGMAX)
        if set(classes) - set(GROUPS):
            self.layer.addItem(layer_title(ROLLUP), ROLLUP)
        for c in classes:
            self.layer.addItem(layer_title(c), c)
        for i in range(self.layer.count()):
            self.layer.setItemData(i, layer_tip(self.layer.itemData(i)),
                                   Qt.ItemDataRole.ToolTipRole)
        i = self.layer.findData(current)
        self.layer.setCurrentIndex(max(0, i))
        self.layer.blockSignals(False)

    def update_legend(self, layer: str, classes: list[str]) -> None:
        cmap = self.colormap.currentText()
        if layer == ARGMAX:
            self.legend.show_classes(classes)
        elif cmap != CLASS_COLOUR:
            table = lut(cmap)
            stops = ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in table[i]))
                     for i in (*range(0, 256, 32), 255)]
            self.legend.show_gradient(stops, "p = 0", "p = 1")
        elif layer == ROLLUP:
            self.legend.show_gradient([colour_of("benign"), colour_of("malignant")],
                                      "benign", "malignant")
        else:
            self.legend.show_gradient(["#ffffff", colour_of(layer)], "p = 0", "p = 1")

    @property
    def params(self) -> dict:
        return {"model": self.model.currentData(), "layer": self.layer.currentData(),
                "colormap": self.colormap.currentText(),
                "opacity": self.opacity.value() / 100, "threshold": self.threshold.value() / 100,
                "visible": self.visible.isChecked()}
