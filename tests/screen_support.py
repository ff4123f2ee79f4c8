"""What a reviewer sees of a window: controls cut off by the window or their parent, text cut
short, and jargon shown without its plain-words tooltip (pvdesk.ui.glossary).

``clipped(top)`` and ``unexplained(top)`` return one line per problem, so a failing test
names every widget at once. ``fit_screen(top, size)`` sizes a top-level window the way a
screen of ``size`` would (its default size, at most the screen's free area).
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QDockWidget,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QTabWidget,
    QWidget,
)

SIZES = ((1366, 768), (1280, 720))
# What a window does not get of the screen's height: a desktop panel (about 40 px) and the
# window's title bar (about 32 px).
CHROME_H = 72


def client_size(size: tuple[int, int]) -> tuple[int, int]:
    return size[0], size[1] - CHROME_H


def fit_screen(top: QWidget, size: tuple[int, int]) -> None:
    """Size ``top`` as on a screen of ``size``: a main window fills the free area; a dialog
    keeps the size it asks for (``default_size``, see pvdesk.ui.screen_fit), shrunk to the
    free area."""
    w, h = client_size(size)
    if isinstance(top, QMainWindow):
        top.resize(w, h)
    else:
        want_w, want_h = getattr(top, "default_size", None) or (top.width(), top.height())
        top.resize(min(want_w, w), min(want_h, h))


def name(w: QWidget) -> str:
    text = ""
    for attr in ("text", "title", "currentText", "placeholderText"):
        f = getattr(w, attr, None)
        if callable(f):
            try:
                text = f()
            except TypeError:
                continue
            if isinstance(text, str) and text:
                break
            text = ""
    parent = w.parentWidget()
    where = type(parent).__name__ if parent is not None else ""
    label = f" {strip_tags(text)[:40]!r}" if text else ""
    return f"{type(w).__name__}{label} (in {where}, {w.objectName() or 'no name'})"


def strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text).replace("&nbsp;", " ")


def _global_rect(w: QWidget, top: QWidget) -> QRect:
    return QRect(w.mapTo(top, QPoint(0, 0)), w.size())


def _scroll_viewport(w: QWidget, top: QWidget):
    """(scroll area, viewport) when ``w`` lies inside a scroll area's viewport, else None."""
    p = w.parentWidget()
    child = w
    while p is not None and p is not top:
        gp = p.parentWidget()
        if isinstance(gp, QAbstractScrollArea) and gp.viewport() is p:
            return gp, p
        child, p = p, gp
    del child
    return None


def shown(top: QWidget):
    """Every widget of ``top``'s own window that is visible (menus, popups are others)."""
    for w in top.findChildren(QWidget):
        if w.isVisible() and w.window() is top and w.width() > 0 and w.height() > 0:
            yield w


def _text_cut(w: QWidget) -> str | None:
    if isinstance(w, QLabel):
        if not w.text() or (w.pixmap() is not None and not w.pixmap().isNull()):
            return None
        if w.wordWrap():
            need = w.heightForWidth(w.width())
            if need > w.height() + 1:
                return f"wrapped text needs {need} px, has {w.height()}"
            return None
        hint = w.minimumSizeHint()
        if w.width() < hint.width() - 1 or w.height() < hint.height() - 1:
            return f"text needs {hint.width()}x{hint.height()}, has {w.width()}x{w.height()}"
        return None
    if isinstance(w, QAbstractButton) and w.text():
        hint = w.sizeHint()
        if w.width() < hint.width() - 2 or w.height() < hint.height() - 4:
            return f"text needs {hint.width()}x{hint.height()}, has {w.width()}x{w.height()}"
        return None
    if isinstance(w, QComboBox) and w.currentText():
        fm = w.fontMetrics()
        need = fm.horizontalAdvance(w.currentText()) + 30
        if not w.itemIcon(w.currentIndex()).isNull():
            need += w.iconSize().width() + 4
        if w.width() < need:
            return f"shows {w.currentText()!r} in {w.width()} px, needs {need}"
        return None
    if isinstance(w, QAbstractSpinBox):
        hint = w.minimumSizeHint()
        if w.width() < hint.width() - 1:
            return f"needs {hint.width()} px, has {w.width()}"
        return None
    if isinstance(w, QLineEdit) and w.placeholderText() and not w.text():
        need = w.fontMetrics().horizontalAdvance(w.placeholderText()) + 12
        if w.width() < need:
            return f"placeholder needs {need} px, has {w.width()}"
    return None


def clipped(top: QWidget) -> list[str]:
    """Visible controls that are not wholly inside the window (or, outside scrolling areas,
    inside their parent), and controls whose text is cut."""
    problems: list[str] = []
    top_rect = top.rect()
    for w in shown(top):
        r = _global_rect(w, top)
        scroll = _scroll_viewport(w, top)
        if scroll is None:
            if not top_rect.contains(r):
                problems.append(f"{name(w)}: {r.getRect()} outside the window {top_rect.size()}")
                continue
            parent = w.parentWidget()
            if parent is not None and parent is not top and not isinstance(w, QDockWidget):
                pr = _global_rect(parent, top)
                if not pr.contains(r):
                    problems.append(f"{name(w)}: {r.getRect()} outside its parent "
                                    f"{pr.getRect()}")
                    continue
        else:
            area, vp = scroll
            vr = _global_rect(vp, top)
            horiz_off = area.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
            if horiz_off and (r.left() < vr.left() or r.right() > vr.right()):
                problems.append(f"{name(w)}: {r.getRect()} cut at the side of a scrolling "
                                f"area {vr.getRect()} that cannot scroll sideways")
                continue
        why = _text_cut(w)
        if why:
            problems.append(f"{name(w)}: {why}")
    return problems


# -- jargon -------------------------------------------------------------------------------
def _tips(*objs) -> str:
    return "\n".join(t for t in objs if isinstance(t, str) and t)


def shown_texts(top: QWidget):
    """(where, text, tooltips) for every piece of text a visible widget shows."""
    for w in shown(top):
        tip = w.toolTip()
        if isinstance(w, QLabel) and w.text():
            buddy = w.buddy()
            yield name(w), strip_tags(w.text()), _tips(tip, buddy.toolTip() if buddy else "")
        elif isinstance(w, QAbstractButton) and w.text():
            yield name(w), w.text(), tip
        elif isinstance(w, QGroupBox) and w.title():
            yield name(w), w.title(), tip
        elif isinstance(w, QComboBox):
            for i in range(w.count()):
                item_tip = w.itemData(i, Qt.ItemDataRole.ToolTipRole)
                yield f"{name(w)} item {i}", w.itemText(i), _tips(tip, item_tip)
        elif isinstance(w, QLineEdit) and w.placeholderText():
            yield name(w), w.placeholderText(), tip
        elif isinstance(w, QTabWidget):
            for i in range(w.count()):
                yield f"{name(w)} tab {i}", w.tabText(i), _tips(tip, w.tabToolTip(i))
        if isinstance(w, QListWidget):
            for i in range(w.count()):
                it = w.item(i)
                yield f"{name(w)} row {i}", it.text(), _tips(tip, it.toolTip())
        elif isinstance(w, QAbstractItemView) and w.model() is not None:
            m = w.model()
            for c in range(m.columnCount()):
                text = m.headerData(c, Qt.Orientation.Horizontal)
                if isinstance(text, str) and text:
                    head_tip = m.headerData(c, Qt.Orientation.Horizontal,
                                            Qt.ItemDataRole.ToolTipRole)
                    yield f"{name(w)} column {c}", text, _tips(tip, head_tip)


def unexplained(top: QWidget) -> list[str]:
    """Texts that show a glossary term while no tooltip there carries its plain words."""
    from pvdesk.ui.glossary import GLOSSARY, terms_in

    problems = []
    for where, text, tips in shown_texts(top):
        for term in terms_in(text):
            if GLOSSARY[term].plain not in tips:
                problems.append(f"{where}: shows {term!r} in {text[:60]!r} without its "
                                "glossary tooltip")
    return problems


def save(top: QWidget, folder: Path, stem: str, size: tuple[int, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{size[0]}x{size[1]}.png"
    assert top.grab().save(str(path)), path
    return path


def in_view(w: QWidget, area: QAbstractScrollArea) -> bool:
    """``w`` is wholly inside ``area``'s visible part (no scrolling needed to see it)."""
    vp = area.viewport()
    r = QRect(w.mapTo(vp, QPoint(0, 0)), w.size())
    return vp.rect().contains(r)
