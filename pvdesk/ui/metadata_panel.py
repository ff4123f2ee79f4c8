"""The metadata panel: the source's non-identifying properties, nothing from label or macro."""

from __future__ import annotations

from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

LABELS = {
    "kind": "Kind", "vendor": "Vendor", "width": "Width (px)", "height": "Height (px)",
    "mpp": "Microns per pixel", "mpp_source": "mpp from", "objective_power": "Objective",
    "levels": "Pyramid levels", "level_dimensions": "Level sizes",
    "level_downsamples": "Level downsamples", "images": "Images", "classes": "Folder classes",
}


def _fmt(key: str, value) -> str:
    if value is None or value == "":
        return "unknown"
    if key == "mpp" and isinstance(value, float):
        return f"{value:.4g} µm/px"
    if key == "objective_power" and isinstance(value, (int, float)):
        return f"{value:g}x"
    if key == "level_dimensions":
        return ", ".join(f"{w}×{h}" for w, h in value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


class MetadataPanel(QTreeWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["Property", "Value"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setMinimumHeight(120)

    def show_source(self, source, extra: dict | None = None) -> None:
        """List ``source.properties()`` (non-identifying by contract) plus ``extra`` lines."""
        self.clear()
        rows = [("File", source.path.name)]
        props = source.properties()
        rows += [(LABELS.get(k, k), _fmt(k, v)) for k, v in props.items()]
        rows += list((extra or {}).items())
        for k, v in rows:
            item = QTreeWidgetItem([str(k), str(v)])
            item.setToolTip(1, str(v))
            self.addTopLevelItem(item)
        self.resizeColumnToContents(0)

    def value(self, label: str) -> str | None:
        for i in range(self.topLevelItemCount()):
            item = self.topLevelItem(i)
            if item.text(0) == label:
                return item.text(1)
        return None
