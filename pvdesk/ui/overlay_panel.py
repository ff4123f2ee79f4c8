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
from pvdesk.taxonomy import Taxonomy
from pvdesk.ui.glossary import explain, form_row, tip


def layer_tip(layer: str, taxonomy: Taxonomy | None = None) -> str:
    tax = taxonomy or Taxonomy.breakhis()
    if layer == ARGMAX:
        return explain("class_map")
    if layer == ROLLUP:
        low, high = tax.rollup_pair or ("", "")
        return (f"From {low} ({tax.colour_of(low)}) to {high} ({tax.colour_of(high)}).\n\n"
                if tax.rollup_pair else "") + explain("rollup")
    if layer in tax.groups:
        return f"The {layer} score of each tile.\n\n" + explain("rollup", "probability")
    try:
        name = tax.display(layer).lower()
    except KeyError:
        name = layer.replace("_", " ")
    return f"Each tile's probability of {name}.\n\n" + explain("probability")


def layer_title(layer: str, taxonomy: Taxonomy | None = None) -> str:
    """A layer's name in the selector and legend: "1  Tumour" (key, display name)."""
    tax = taxonomy or Taxonomy.breakhis()
    if layer == ARGMAX:
        return "Class map (most likely class)"
    if layer == ROLLUP:
        low, high = tax.rollup_pair or ("benign", "malignant")
        return f"{low.capitalize()} / {high} roll-up"
    if layer in tax.groups:
        return f"P({layer})"
    try:
        key, label, _ = tax.label_parts(layer)
    except KeyError:
        return layer
    return f"{key}  {label}" if key else f"    {label}"


MAX_LEGEND = 20  # swatches at most; a longer taxonomy lists its first 19 and a count


class Legend(QWidget):
    """Swatches in the taxonomy's colours, or a gradient for one probability layer."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._entries: list[tuple[str, str | None]] = []  # (text, colour or None)
        self._gradient: tuple[list[str], str, str] | None = None  # stops, low, high labels

    def show_classes(self, classes, taxonomy: Taxonomy | None = None) -> None:
        tax = taxonomy or Taxonomy.for_classes(classes)
        classes = list(classes)
        shown = classes if len(classes) <= MAX_LEGEND else classes[:MAX_LEGEND - 1]
        self._entries = [(layer_title(c, tax), tax.colour_of(c)) for c in shown]
        if len(shown) < len(classes):  # a long taxonomy: the rest by name in the Layer list
            self._entries.append((f"… and {len(classes) - len(shown)} more classes (Layer "
                                  "list)", None))
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
            if colour is not None:
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

    def set_models(self, names: list[str], classes: list[str],
                   taxonomy: Taxonomy | None = None) -> None:
        """Fill the selectors for a run (blocking signals; one ``changed`` at the end)."""
        for combo in (self.model, self.layer):
            combo.blockSignals(True)
            combo.clear()
        for n in names:
            self.model.addItem(n, n)
        self.set_layers(classes, taxonomy)
        for combo in (self.model, self.layer):
            combo.blockSignals(False)
        self.setEnabled(bool(names))
        self._emit()

    def set_layers(self, classes: list[str], taxonomy: Taxonomy | None = None) -> None:
        """The layers of a model: its class map, the roll-up (only when its taxonomy has a
        pair of groups and the model has classes to sum), and one layer per class."""
        tax = taxonomy or Taxonomy.for_classes(classes)
        current = self.layer.currentData()
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItem(layer_title(ARGMAX, tax), ARGMAX)
        if tax.rollup_pair and set(classes) - set(tax.groups):
            self.layer.addItem(layer_title(ROLLUP, tax), ROLLUP)
        for c in classes:
            self.layer.addItem(layer_title(c, tax), c)
        for i in range(self.layer.count()):
            self.layer.setItemData(i, layer_tip(self.layer.itemData(i), tax),
                                   Qt.ItemDataRole.ToolTipRole)
        i = self.layer.findData(current)
        self.layer.setCurrentIndex(max(0, i))
        self.layer.blockSignals(False)

    def update_legend(self, layer: str, classes: list[str],
                      taxonomy: Taxonomy | None = None) -> None:
        tax = taxonomy or Taxonomy.for_classes(classes)
        cmap = self.colormap.currentText()
        if layer == ARGMAX:
            self.legend.show_classes(classes, tax)
        elif cmap != CLASS_COLOUR:
            table = lut(cmap)
            stops = ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in table[i]))
                     for i in (*range(0, 256, 32), 255)]
            self.legend.show_gradient(stops, "p = 0", "p = 1")
        elif layer == ROLLUP and tax.rollup_pair:
            low, high = tax.rollup_pair
            self.legend.show_gradient([tax.colour_of(low), tax.colour_of(high)], low, high)
        else:
            self.legend.show_gradient(["#ffffff", tax.colour_of(layer)], "p = 0", "p = 1")

    @property
    def params(self) -> dict:
        return {"model": self.model.currentData(), "layer": self.layer.currentData(),
                "colormap": self.colormap.currentText(),
                "opacity": self.opacity.value() / 100, "threshold": self.threshold.value() / 100,
                "visible": self.visible.isChecked()}
