"""Small dialogs: errors as one clear line (never a traceback), About, the label image."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QScrollArea, QVBoxLayout

from pvdesk import __version__
from pvdesk.ui.tile_loader import pil_to_qimage

ABOUT = (
    f"<h3>pvdesk {__version__}</h3>"
    "<p>Review breast histopathology slides with AI tile classifiers.</p>"
    "<p><b>For research use only. Not for diagnosis.</b> Model outputs are not validated for "
    "clinical use and must not guide patient care.</p>"
    "<p>Sample slide CMU-1-Small-Region: OpenSlide test data, public domain (CC0).</p>"
)


def show_error(parent, message: str, title: str = "pvdesk") -> None:
    QMessageBox.warning(parent, title, message)


def show_about(parent) -> None:
    QMessageBox.about(parent, "About pvdesk", ABOUT)


def confirm_label_image(parent) -> bool:
    answer = QMessageBox.question(
        parent, "Show label image",
        "Label and macro images can show patient names or other identifying text.\n\n"
        "Show them anyway?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class ImageDialog(QDialog):
    """Shows one PIL image (used for the label / macro image on explicit request)."""

    def __init__(self, title: str, image, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        label = QLabel()
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setPixmap(QPixmap.fromImage(pil_to_qimage(image)))
        scroll = QScrollArea()
        scroll.setWidget(label)
        scroll.setWidgetResizable(True)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)
        self.resize(min(900, image.width + 40), min(700, image.height + 40))
