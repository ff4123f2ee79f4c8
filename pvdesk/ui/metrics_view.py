"""Training ▸ Model metrics: the evaluation results a bundle carries (see pvdesk.bundle_metrics).

:class:`MetricsPanel` shows one report (summary numbers, the per-class table with macro and
weighted averages, the confusion-matrix and curves images); the retrain dialog reuses it
for its results. :class:`MetricsDialog` picks a bundle (any in the model folders, or a
folder chosen by hand) and one of its reports.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pvdesk.bundle_metrics import Report, bundle_reports

CONFUSION_HEIGHT = 340
CURVES_HEIGHT = 280


class ImageLabel(QLabel):
    """A PNG scaled down (never up) to the width it is given, at most ``max_h`` high."""

    def __init__(self, max_h: int):
        super().__init__()
        self.max_h = max_h
        self.original = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setMinimumSize(120, 60)

    def set_image(self, path: Path | None) -> bool:
        self.original = QPixmap(str(path)) if path is not None else QPixmap()
        self.setToolTip(str(path or ""))
        self.setVisible(not self.original.isNull())
        self._fit()
        return not self.original.isNull()

    def _target(self, width: int) -> QSize:
        o = self.original.size()
        if o.isEmpty():
            return QSize(0, 0)
        scale = min(1.0, width / o.width(), self.max_h / o.height())
        return QSize(max(1, int(o.width() * scale)), max(1, int(o.height() * scale)))

    def sizeHint(self) -> QSize:
        return self._target(10**6)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._target(width).height()

    def _fit(self) -> None:
        if not self.original.isNull():
            self.setPixmap(self.original.scaled(
                self._target(max(self.width(), 120)), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()


def _num(v) -> str:
    return "–" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


class MetricsPanel(QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        body = QWidget()
        lay = QVBoxLayout(body)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold; font-size: 13px;")
        self.title.setWordWrap(True)
        self.context = QLabel()
        self.context.setWordWrap(True)
        self.context.setStyleSheet("color: #555;")
        self.context.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QGridLayout()
        self.summary.setHorizontalSpacing(18)
        self.summary.setColumnStretch(2, 1)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["class", "precision", "recall", "F1", "support"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.confusion = ImageLabel(CONFUSION_HEIGHT)
        self.curves = ImageLabel(CURVES_HEIGHT)
        numbers = QVBoxLayout()
        numbers.addLayout(self.summary)
        numbers.addWidget(self.table)
        numbers.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(numbers)
        top.addWidget(self.confusion, 1)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        lay.addWidget(self.title)
        lay.addWidget(self.context)
        lay.addLayout(top)
        lay.addWidget(self.curves)
        lay.addWidget(self.empty)
        lay.addStretch(1)
        self.setWidget(body)
        self.report: Report | None = None
        self.show_report(None)

    def _clear_summary(self) -> None:
        while self.summary.count():
            w = self.summary.takeAt(0).widget()
            if w is not None:
                w.hide()
                w.deleteLater()

    def show_report(self, report: Report | None, empty_text: str = "") -> None:
        self.report = report
        self._clear_summary()
        has = report is not None
        for w in (self.title, self.context, self.table, self.confusion, self.curves):
            w.setVisible(has)
        self.empty.setVisible(not has)
        self.empty.setText(empty_text)
        if report is None:
            return
        self.title.setText(report.title)
        ctx = {k: v for k, v in report.context.items() if k not in ("curves", "bundle")}
        self.context.setText(" · ".join(f"{k}: {v}" for k, v in ctx.items())
                             or ("" if report.full else "Only summary numbers are recorded "
                                 "(no metrics.json next to the bundle)."))
        for i, (name, value) in enumerate(report.summary_rows()):
            key, val = QLabel(name), QLabel(_num(value))
            val.setStyleSheet("font-weight: bold;")
            self.summary.addWidget(key, i, 0)
            self.summary.addWidget(val, i, 1)
        n = report.metrics.get("n")
        if n is not None:
            self.summary.addWidget(QLabel("Images evaluated"), len(report.summary_rows()), 0)
            self.summary.addWidget(QLabel(str(n)), len(report.summary_rows()), 1)
        rows = report.class_rows()
        self.table.setVisible(bool(rows))
        self.table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, v in enumerate(cells):
                text = str(v).replace("_", " ") if c == 0 else _num(v)
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if str(cells[0]).endswith("average"):
                    f = item.font()
                    f.setItalic(True)
                    item.setFont(f)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()
        self.table.setFixedHeight(self.table.horizontalHeader().height() + 4
                                  + sum(self.table.rowHeight(r) for r in range(len(rows))))
        self.table.setFixedWidth(4 + sum(self.table.columnWidth(c) for c in range(5)))
        self.confusion.set_image(report.confusion_png)
        self.curves.set_image(report.curves_png)


class MetricsDialog(QDialog):
    """Pick a bundle and one of its evaluation reports."""

    def __init__(self, settings=None, parent=None, bundles=None, select: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Model metrics")
        if bundles is None:
            from pvdesk.models import find_bundles

            bundles = find_bundles(getattr(settings, "model_folders", []) or [])
        self.bundle_combo = QComboBox()
        for b in bundles:
            self.bundle_combo.addItem(f"{b.name}  ({b.kind})", b)
        browse = QPushButton("Bundle folder…")
        browse.clicked.connect(self._browse)
        self.report_combo = QComboBox()
        self.panel = MetricsPanel()
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.bundle_combo, 1)
        top.addWidget(browse)
        top.addWidget(QLabel("Report"))
        top.addWidget(self.report_combo, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.panel, 1)
        self.reports: list[Report] = []
        self.bundle_combo.currentIndexChanged.connect(self._on_bundle)
        self.report_combo.currentIndexChanged.connect(self._on_report)
        self.resize(960, 760)
        if select is not None:
            self.show_bundle(select)
            return
        for i in range(self.bundle_combo.count()):  # the first bundle that has results
            if bundle_reports(self.bundle_combo.itemData(i)):
                self.bundle_combo.setCurrentIndex(i)
                break
        self._on_bundle()

    def show_bundle(self, bundle) -> None:
        """Show ``bundle`` (a Bundle, a name among the listed ones, or a folder)."""
        if isinstance(bundle, (str, Path)):
            for i in range(self.bundle_combo.count()):
                b = self.bundle_combo.itemData(i)
                if b.name == str(bundle) or (b.path and Path(b.path) == Path(bundle)):
                    self.bundle_combo.setCurrentIndex(i)
                    self._on_bundle()
                    return
            from pvdesk.models import resolve_bundle

            bundle = resolve_bundle(bundle)
        self.bundle_combo.addItem(f"{bundle.name}  ({bundle.kind})", bundle)
        self.bundle_combo.setCurrentIndex(self.bundle_combo.count() - 1)
        self._on_bundle()

    def _browse(self) -> None:
        from pvdesk.errors import PvdeskError

        path = QFileDialog.getExistingDirectory(self, "Model bundle folder")
        if path:
            try:
                self.show_bundle(path)
            except PvdeskError as exc:
                self.panel.show_report(None, str(exc))

    def _on_bundle(self, *_) -> None:
        b = self.bundle_combo.currentData()
        self.reports = bundle_reports(b) if b is not None else []
        self.report_combo.blockSignals(True)
        self.report_combo.clear()
        for r in self.reports:
            self.report_combo.addItem(r.title)
        self.report_combo.blockSignals(False)
        self.report_combo.setEnabled(len(self.reports) > 1)
        self._on_report()

    def _on_report(self, *_) -> None:
        b = self.bundle_combo.currentData()
        i = self.report_combo.currentIndex()
        if b is None:
            self.panel.show_report(None, "No model bundles found.")
        elif not self.reports:
            self.panel.show_report(None, f"{b.name} carries no evaluation results. Evaluate it "
                                   "with: python -m training evaluate --model "
                                   f"{b.path or b.name} --data DATASET")
        else:
            self.panel.show_report(self.reports[max(i, 0)])
