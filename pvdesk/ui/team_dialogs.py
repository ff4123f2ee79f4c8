"""Dialogs of team review: who is reviewing (and in what role), and the project's
blinded-reading settings."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
)

from pvdesk.app.team import ADJUDICATOR, READER

ROLE_TIPS = {READER: "Labels tiles; under blinded reading sees neither the model nor "
                     "other reviewers.",
             ADJUDICATOR: "Resolves the tiles where readers disagree (Status ▸ Disputed); "
                          "sees every reader's label. Their label is the consensus."}


def _ok_cancel(dialog: QDialog) -> QDialogButtonBox:
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


class ReviewerDialog(QDialog):
    """A name (one of the known reviewers, or a new one) and, optionally, a role."""

    def __init__(self, current: str, known: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Switch reviewer")
        self.name = QComboBox()
        self.name.setEditable(True)
        roles = dict(known)
        for n in sorted(roles):
            self.name.addItem(n)
        self.name.setCurrentText(current)
        self.role = QComboBox()
        self.role.addItem("keep the stored role (reader when new)", None)
        for r in (READER, ADJUDICATOR):
            self.role.addItem(r, r)
            self.role.setItemData(self.role.count() - 1, ROLE_TIPS[r], Qt.ItemDataRole.ToolTipRole)
        listing = ", ".join(f"{n} ({r})" for n, r in sorted(roles.items())) or "none yet"
        note = QLabel(f"Acting now: <b>{current}</b>. Reviewers in this store: {listing}.<br>"
                      "Every decision from now on is stored under the new name; nobody's "
                      "decisions are overwritten.")
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Reviewer", self.name)
        form.addRow("Role", self.role)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(_ok_cancel(self))

    def choice(self) -> tuple[str, str | None]:
        return self.name.currentText().strip(), self.role.currentData()


class ReadingDialog(QDialog):
    """The project's blinded-reading settings (stored in the review store, audited)."""

    def __init__(self, blinded: bool, order: str, seed: int, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Blinded reading")
        self.blinded = QCheckBox("Blinded reading for this project")
        self.blinded.setChecked(blinded)
        self.blinded.setToolTip("While a reader works: no prediction, confidence or heatmap, "
                                "no other reviewer's labels, a queue that does not use the "
                                "model, and no Enter to confirm. Adjudicators see everything.")
        self.order = QComboBox()
        self.order.addItem("Random, with the seed below", "random")
        self.order.addItem("Spatial: row by row across the slide", "spatial")
        self.order.setCurrentIndex(max(0, self.order.findData(order)))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(int(seed))
        note = QLabel("Stored in the review project, so every reader of its copies reads "
                      "the same way. A reader's first label on a tile is the one analysed.")
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("", self.blinded)
        form.addRow("Queue order", self.order)
        form.addRow("Seed", self.seed)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(_ok_cancel(self))

    def values(self) -> tuple[bool, str, int]:
        return self.blinded.isChecked(), self.order.currentData(), self.seed.value()
