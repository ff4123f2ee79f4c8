"""Training ▸ Model metrics: the evaluation results a bundle carries (see pvdesk.bundle_metrics).

:class:`MetricsPanel` shows one report (summary numbers with their denominators, "31 of 40
images", and their 95% intervals when the report has them, or why it has none, the per-class table with macro and weighted averages, the confusion matrix
drawn from the numbers at a readable size (pvdesk.ui.confusion_view; the report's PNG only
when the numbers are missing) and the curves image); the retrain dialog reuses it for its
results. The numbers sit beside the matrix when there is room, above it when not. Every
score's name carries its plain words (pvdesk.ui.glossary). :class:`MetricsDialog` picks a bundle (any in the model folders, or a
folder chosen by hand) and one of its reports.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
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
from pvdesk.ui.confusion_view import ConfusionView, class_label
from pvdesk.ui.glossary import explain, terms_in, tip, tip_text
from pvdesk.ui.screen_fit import fit_to_screen

CONFUSION_HEIGHT = 340
CURVES_HEIGHT = 280
COLUMNS = ("class", "precision", "recall", "F1", "support")
COLUMN_TERMS = {"precision": ("precision",), "recall": ("recall",), "F1": ("f1",),
                "support": ("support",)}
# summary row name -> the metrics key its bootstrap interval is stored under
CI_KEYS = {"Accuracy": "accuracy", "Balanced accuracy": "balanced_accuracy",
           "Macro F1": "macro_f1", "Weighted F1": "weighted_f1"}


def set_item_tips(combo: QComboBox) -> None:
    """Each item of ``combo`` explains the glossary terms its text shows."""
    for i in range(combo.count()):
        terms = terms_in(combo.itemText(i))
        combo.setItemData(i, explain(*terms) if terms else None, Qt.ItemDataRole.ToolTipRole)


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


def interval(metrics: dict, key: str | None) -> str:
    """"0.740–0.860" (the bootstrap 95% interval), or "" when the report has none."""
    boot = metrics.get("bootstrap") if isinstance(metrics.get("bootstrap"), dict) else {}
    ci = (boot.get("ci95") or {}).get(key) if key else None
    if not ci or len(ci) != 2 or None in ci:
        return ""
    return f"{ci[0]:.3f}–{ci[1]:.3f}"


def interval_note(metrics: dict) -> str:
    boot = metrics.get("bootstrap") if isinstance(metrics.get("bootstrap"), dict) else {}
    unit, n = boot.get("unit"), boot.get("n")
    return f"Here from {n} resamples of the test {unit}s." if unit and n else ""


CI_TIP = ("The range that holds the true value 95 times in 100, found by scoring many "
          "resamples of the test images: the narrower it is, the surer the number.")


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
        self.context.setStyleSheet("color: #444444;")
        self.context.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QGridLayout()
        self.summary.setHorizontalSpacing(14)
        self.summary.setColumnStretch(3, 1)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        for c, name in enumerate(COLUMNS):
            self.table.horizontalHeaderItem(c).setToolTip(
                explain(*COLUMN_TERMS[name]) if name in COLUMN_TERMS
                else "The true class of the test images.")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.confusion_title = QLabel("Confusion matrix")
        self.confusion_title.setStyleSheet("font-weight: bold;")
        tip(self.confusion_title, "confusion")
        self.confusion = ConfusionView()
        self.confusion_image = ImageLabel(CONFUSION_HEIGHT)  # only when the numbers are missing
        self.curves = ImageLabel(CURVES_HEIGHT)
        tip(self.curves, "loss", "epochs", "validation")
        numbers = QWidget()
        nl = QVBoxLayout(numbers)
        nl.setContentsMargins(0, 0, 0, 0)
        nl.addLayout(self.summary)
        nl.addWidget(self.table)
        nl.addStretch(1)
        matrix = QWidget()
        ml = QVBoxLayout(matrix)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(self.confusion_title)
        ml.addWidget(self.confusion)
        ml.addWidget(self.confusion_image)
        ml.addStretch(1)
        self.numbers, self.matrix = numbers, matrix
        self.top = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.top.setSpacing(24)
        self.top.addWidget(numbers)
        self.top.addWidget(matrix)
        self.top.addStretch(1)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        lay.addWidget(self.title)
        lay.addWidget(self.context)
        lay.addLayout(self.top)
        lay.addWidget(self.curves)
        lay.addWidget(self.empty)
        lay.addStretch(1)
        self.setWidget(body)
        self.report: Report | None = None
        self.show_report(None)

    def _arrange(self) -> None:
        """The numbers beside the matrix when both fit the width, else above it."""
        room = self.viewport().width() - 40
        need = self.numbers.sizeHint().width() + self.top.spacing() + \
            self.matrix.sizeHint().width()
        want = QBoxLayout.Direction.LeftToRight if need <= room or not self.matrix.isVisible() \
            else QBoxLayout.Direction.TopToBottom
        if self.top.direction() != want:
            self.top.setDirection(want)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._arrange()

    def _clear_summary(self) -> None:
        while self.summary.count():
            w = self.summary.takeAt(0).widget()
            if w is not None:
                w.hide()
                w.deleteLater()

    def _summary_row(self, i: int, name: str, value: str, note: str = "") -> None:
        key, val = QLabel(name), QLabel(value)
        val.setStyleSheet("font-weight: bold;")
        tip_text(key, name)
        tip_text(val, name)
        self.summary.addWidget(key, i, 0)
        self.summary.addWidget(val, i, 1)
        if note:
            ci = QLabel(note)
            ci.setToolTip(CI_TIP)
            self.summary.addWidget(ci, i, 2)

    def show_report(self, report: Report | None, empty_text: str = "") -> None:
        self.report = report
        self._clear_summary()
        has = report is not None
        for w in (self.title, self.context, self.table, self.confusion, self.curves,
                  self.confusion_title, self.confusion_image, self.matrix):
            w.setVisible(has)
        self.empty.setVisible(not has)
        self.empty.setText(empty_text)
        if report is None:
            return
        self.title.setText(report.title)
        tip_text(self.title, report.title)
        ctx = {k: v for k, v in report.context.items() if k not in ("curves", "bundle")}
        self.context.setText(" · ".join(f"{k}: {v}" for k, v in ctx.items())
                             or ("" if report.full else "Only summary numbers are recorded "
                                 "(no metrics.json next to the bundle)."))
        tip_text(self.context, self.context.text())
        rows = report.summary_rows()
        cis = [interval(report.metrics, CI_KEYS.get(name)) for name, _ in rows]
        first = 0
        if any(cis):
            head = QLabel("95% interval")
            head.setStyleSheet("color: #444444;")
            head.setToolTip(" ".join(t for t in (CI_TIP, interval_note(report.metrics)) if t))
            self.summary.addWidget(head, 0, 2)
            first = 1
        counts = report.counts()
        for i, ((name, value), ci) in enumerate(zip(rows, cis, strict=True)):
            text = _num(value) + (f"  ({counts[name]})" if name in counts else "")
            self._summary_row(first + i, name, text, ci)
        n = report.metrics.get("n")
        at = first + len(rows)
        if n is not None:
            self._summary_row(at, "Images evaluated", str(n))
            at += 1
        why = None if any(cis) else report.no_interval()
        if why:
            note = QLabel(why[0].upper() + why[1:] + ".")
            note.setWordWrap(True)
            note.setStyleSheet("color: #8a4b00;")
            note.setToolTip(CI_TIP)
            self.summary.addWidget(note, at, 0, 1, 3)
        rows = report.class_rows()
        self.table.setVisible(bool(rows))
        self.table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, v in enumerate(cells):
                text = (str(v) if str(v).endswith("average") else class_label(str(v))) \
                    if c == 0 else _num(v)
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if str(cells[0]).endswith("average"):
                    f = item.font()
                    f.setItalic(True)
                    item.setFont(f)
                    item.setToolTip(explain(*terms_in(text)) if c == 0 else "")
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()
        self.table.setFixedHeight(self.table.horizontalHeader().height() + 4
                                  + sum(self.table.rowHeight(r) for r in range(len(rows))))
        self.table.setFixedWidth(4 + sum(self.table.columnWidth(c)
                                         for c in range(len(COLUMNS))))
        m = report.metrics
        drawn = self.confusion.set_matrix(m.get("classes") or list(m.get("per_class") or {}),
                                          m.get("confusion"))
        self.confusion.setVisible(drawn)
        shown = drawn or self.confusion_image.set_image(report.confusion_png)
        self.confusion_image.setVisible(not drawn and shown)
        self.confusion_title.setVisible(shown)
        self.matrix.setVisible(shown)
        self.curves.set_image(report.curves_png)
        self._arrange()


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
        tip(browse, "bundle", before="Show the results of a model folder that is not in "
                                     "your model folders.")
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
        set_item_tips(self.bundle_combo)
        fit_to_screen(self, 1120, 760)
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
        set_item_tips(self.bundle_combo)
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
        set_item_tips(self.report_combo)
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
