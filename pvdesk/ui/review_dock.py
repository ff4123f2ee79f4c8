"""The review dock: mode switch, counts, filters, the queue, label keys, slide diagnosis.

Widgets only; ``ReviewController`` connects them to a ``ReviewSession``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pvdesk.taxonomy import NON_TISSUE, UNCERTAIN, Taxonomy
from pvdesk.ui.glossary import explain, tip
from pvdesk.ui.review_layer import swatch
from pvdesk.ui.review_queue import QueueModel, class_text

STATUS_FILTERS = (("All statuses", None), ("Unreviewed", "unreviewed"), ("Reviewed", "reviewed"),
                  ("Confirmed", "confirmed"), ("Corrected", "corrected"))
ORDERS = (("Most uncertain first (entropy)", "entropy"), ("Smallest top-2 margin", "margin"),
          ("Grid / folder order", "tile"))
ORDER_TIPS = {"entropy": explain("entropy"), "margin": explain("margin"),
              "tile": "Tiles in reading order across the slide (left to right, top to "
                      "bottom), or a folder's file order."}
KEY_LABELS = tuple(s.name for s in Taxonomy.breakhis().keyed) + (NON_TISSUE, UNCERTAIN)
HINT_OFF = ("<b>Review mode is off.</b> Press <b>R</b> (or the button) to review from the "
            "keyboard; arrow keys pan the slide until then.")
HINT_KEYS = ("<b>Keys:</b> {keys} · 0 non-tissue · U uncertain · Enter/Space confirm · "
             "J/K or arrows next/previous · S select similar tiles · E why this tile "
             "(Grad-CAM) · Shift/Ctrl-click or -drag select many · Esc clear · Ctrl+Z / "
             "Ctrl+Shift+Z undo/redo")


def key_range(tax: Taxonomy) -> str:
    """"1–8 subtype" (BreakHis), "1–3 class"; with more than 9 classes it says the others
    have no key."""
    n = len(tax.keyed)
    what = "subtype" if tax.is_breakhis else "class"
    text = f"1–{n} {what}" if n > 1 else f"1 {what}"
    rest = len(tax.classes) - n
    return text + (f" (the other {rest} classes have no key: label them from the Review "
                   "menu)" if rest else "")


HINT_ON = HINT_KEYS.format(keys=key_range(Taxonomy.breakhis()))


class ReviewDock(QWidget):
    label_clicked = Signal(str)  # a review label (same as its key)
    confirm_clicked = Signal()
    diagnosis_changed = Signal(object, str)  # label or None, comment
    patient_changed = Signal(str)  # the slide's patient code ("" clears it)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.mode = QPushButton("Review mode (R)")
        self.mode.setCheckable(True)
        self.counts = QLabel("No predictions yet: run a model (Analysis ▸ Run model…).")
        self.counts.setWordWrap(True)
        self.counts.setStyleSheet("font-weight: bold;")
        self.where = QLabel("")
        self.where.setStyleSheet("color: #555555;")
        self.hint = QLabel(HINT_OFF)
        self.hint.setWordWrap(True)
        self.hint.setTextFormat(Qt.TextFormat.RichText)
        line = self.fontMetrics().lineSpacing()
        self.counts.setMinimumHeight(line + 2)  # wrapped labels in docks get too little
        self.hint.setMinimumHeight(4 * line + 2)

        self.run = QComboBox()
        self.klass = QComboBox()
        self.status = QComboBox()
        for text, value in STATUS_FILTERS:
            self.status.addItem(text, value)
        self.order = QComboBox()
        for text, value in ORDERS:
            self.order.addItem(text, value)
            self.order.setItemData(self.order.count() - 1, ORDER_TIPS[value],
                                   Qt.ItemDataRole.ToolTipRole)
        tip(self.order, "entropy", "margin", before="Which tiles the queue shows first.")
        self.disagree = QCheckBox("Only where folder class ≠ prediction")
        self.disagree.setEnabled(False)
        filters = QFormLayout()
        self.filter_form = filters  # team review hides the "Predicted" row when blinded
        self.hint_on = HINT_ON
        self.team_seed: int | None = None  # blinded reading's stored seed (random order)
        self.blind_reader: str | None = None  # the blinded reader (others' diagnoses hidden)
        self.disputed: set[int] | None = None  # the adjudicator's "Disputed" status filter
        filters.addRow("Model run", self.run)
        filters.addRow("Predicted", self.klass)
        filters.addRow("Status", self.status)
        filters.addRow("Order", self.order)
        filters.addRow("", self.disagree)

        self.model = QueueModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setWordWrap(False)
        # Fixed widths from the font, never "resize to contents": that measures every row
        # of the queue (100k of them on a large slide) each time one row changes.
        header = self.table.horizontalHeader()
        fm = self.table.fontMetrics()
        for col, mode in enumerate((QHeaderView.ResizeMode.Fixed,
                                    QHeaderView.ResizeMode.Stretch,
                                    QHeaderView.ResizeMode.Fixed,
                                    QHeaderView.ResizeMode.Stretch)):
            header.setSectionResizeMode(col, mode)
        header.resizeSection(0, fm.horizontalAdvance("000000") + 12)
        header.resizeSection(2, fm.horizontalAdvance("0.00") + 16)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setMinimumHeight(160)

        self.selection = QLabel("")
        self.selection.setWordWrap(True)
        keys = QGridLayout()
        keys.setSpacing(3)
        self.keys_grid = keys
        self.key_buttons: dict[str, QPushButton] = {}
        self.confirm = QPushButton("✓ Confirm prediction (Enter / Space)")
        self.confirm.clicked.connect(self.confirm_clicked)
        self.undo = QPushButton("Undo (Ctrl+Z)")
        self.redo = QPushButton("Redo (Ctrl+Shift+Z)")
        undo_row = QHBoxLayout()
        undo_row.addWidget(self.undo)
        undo_row.addWidget(self.redo)

        diag = QGroupBox("Slide diagnosis")
        self.diagnosis = QComboBox()
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("Comment (stored with the diagnosis)")
        self.comment.setFixedHeight(54)
        self.diag_note = QLabel("")
        self.patient = QLineEdit()
        self.patient.setPlaceholderText("Patient: a study code, not a name")
        self.patient.setMaxLength(64)
        self.patient.setToolTip(
            "The slide's patient as a study code (e.g. a pseudonymised case number). Exports "
            "carry it, and retraining keeps every slide of one patient on one side of the "
            "train/test split. Enter stores it.")
        self.patient.editingFinished.connect(self._emit_patient)
        self._patient_shown = ""
        self.diag_note.setWordWrap(True)
        form = QVBoxLayout(diag)
        form.addWidget(self.diagnosis)
        form.addWidget(self.comment)
        form.addWidget(self.diag_note)
        form.addWidget(self.patient)
        self._diag_timer = QTimer(self, singleShot=True, interval=800)
        self._diag_timer.timeout.connect(self._emit_diagnosis)
        self._loading = False
        self.diagnosis.currentIndexChanged.connect(self._emit_diagnosis)
        self.comment.textChanged.connect(self._comment_edited)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.mode)
        layout.addWidget(self.counts)
        layout.addWidget(self.where)
        layout.addWidget(self.hint)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.selection)
        layout.addWidget(self.confirm)
        layout.addLayout(keys)
        layout.addLayout(undo_row)
        layout.addWidget(diag)
        self.taxonomy = None  # set_taxonomy fills it: BreakHis until a run is shown
        self.set_taxonomy(Taxonomy.breakhis())
        self.set_mode(False)

    # -- state from the controller -----------------------------------------------------
    def set_taxonomy(self, tax: Taxonomy) -> None:
        """The run's classes: the label buttons (keys 1-9 in class order, 0, U), the
        predicted-class filter, the slide diagnosis choices and the key hint follow it."""
        if tax == self.taxonomy:
            return
        self.taxonomy = tax
        for b in self.key_buttons.values():
            self.keys_grid.removeWidget(b)
            b.hide()  # gone from the screen now, deleted at the next turn of the event loop
            b.deleteLater()
        self.key_buttons = {}
        for i, name in enumerate([s.name for s in tax.keyed] + [NON_TISSUE, UNCERTAIN]):
            key, label, _ = tax.label_parts(name)
            b = QPushButton(f"{key} {label}")
            b.setIcon(QIcon(swatch(name, 14)))
            b.setStyleSheet("QPushButton { text-align: left; padding: 3px 6px; }")
            b.setToolTip(f"Label the tile(s) {label} (key {key})")
            b.clicked.connect(lambda _=False, n=name: self.label_clicked.emit(n))
            self.keys_grid.addWidget(b, i // 2, i % 2)
            self.key_buttons[name] = b
        for combo in (self.klass, self.diagnosis):
            combo.blockSignals(True)
            combo.clear()
        self.klass.addItem("All predicted classes", None)
        for s in tax.classes:
            self.klass.addItem(class_text(s.name), s.name)
        for g in tax.groups:
            self.klass.addItem(g.capitalize(), g)
        self.diagnosis.addItem("— not set —", None)
        for name in (*tax.groups, *tax.names, UNCERTAIN):
            self.diagnosis.addItem(tax.display(name), name)
        for combo in (self.klass, self.diagnosis):
            combo.blockSignals(False)
        if self.mode.isChecked():
            self.hint.setText(self.hint_on)

    @property
    def hint_on(self) -> str:
        """The hint shown in review mode: the run's keys (or a hint of its own, set by a
        caller such as team review)."""
        own = self._hint_on
        return HINT_KEYS.format(keys=key_range(self.taxonomy)) if own == HINT_ON else own

    @hint_on.setter
    def hint_on(self, text: str) -> None:
        self._hint_on = text

    def set_mode(self, on: bool) -> None:
        self.mode.blockSignals(True)
        self.mode.setChecked(on)
        self.mode.blockSignals(False)
        self.mode.setText("Review mode: ON (R to leave)" if on else "Review mode (R)")
        self.mode.setStyleSheet("QPushButton { background: #2e7d32; color: white; "
                                "font-weight: bold; padding: 4px; }" if on else "")
        self.hint.setText(self.hint_on if on else HINT_OFF)

    def set_runs(self, runs, current: int | None) -> None:
        self.run.blockSignals(True)
        self.run.clear()
        for r in runs:
            flag = "" if r.trained else " (UNTRAINED)"
            self.run.addItem(f"{r.bundle_name}{flag} · run {r.run_id}", r.run_id)
        i = self.run.findData(current)
        self.run.setCurrentIndex(max(0, i))
        self.run.blockSignals(False)

    def filters(self) -> dict:
        f = {"predicted": self.klass.currentData(), "status": self.status.currentData(),
             "order": self.order.currentData(), "only": None,
             "disagree": self.disagree.isChecked() and self.disagree.isEnabled()}
        if f["status"] == "disputed":  # an adjudicator's queue (pvdesk.ui.team_view)
            f["status"], f["only"] = None, set(self.disputed or ())
        if self.team_seed is not None:
            f["seed"] = self.team_seed
        return f

    def show_selection(self, n: int) -> None:
        self.selection.setText(
            f"<b>{n} tiles selected</b>: Enter confirms them all, "
            f"{key_range(self.taxonomy).split(' ')[0]} / 0 / U label them "
            "all (Esc clears)." if n > 1 else "")

    def show_diagnosis(self, label, comment, reviewer, at) -> None:
        me = self.blind_reader  # blinded reading: another reviewer's diagnosis is hidden
        hidden = bool(me and at and reviewer != me)
        for w in (self.diagnosis, self.comment):
            w.setEnabled(not hidden)
        if hidden:
            label, comment = None, ""
        self._loading = True
        self.diagnosis.setCurrentIndex(max(0, self.diagnosis.findData(label)))
        if self.comment.toPlainText() != (comment or ""):
            self.comment.setPlainText(comment or "")
        self._loading = False
        self.diag_note.setText("Another reviewer's diagnosis is hidden (blinded reading)."
                               if hidden else f"Stored: {reviewer}, {at}" if at else "")

    def show_patient(self, code: str | None) -> None:
        self._patient_shown = code or ""
        self.patient.setText(self._patient_shown)

    def _emit_patient(self) -> None:
        text = self.patient.text().strip()
        if text != self._patient_shown:
            self._patient_shown = text
            self.patient_changed.emit(text)

    def _comment_edited(self) -> None:
        if not self._loading:
            self._diag_timer.start()

    def _emit_diagnosis(self, *_) -> None:
        if not self._loading:
            self._diag_timer.stop()
            self.diagnosis_changed.emit(self.diagnosis.currentData(),
                                        self.comment.toPlainText().strip())

    def flush_diagnosis(self) -> None:
        if self._diag_timer.isActive():
            self._emit_diagnosis()
