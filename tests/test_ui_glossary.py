"""pvdesk.ui.glossary: one plain explanation per term, found in the texts that show it, and
every dialog and dock that shows a term carries its explanation in a tooltip (the same check
runs on the whole window in test_ui_screens.py; these are the quick, model-free ones)."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt
from screen_support import unexplained

from pvdesk.taxonomy import CLASS_NAMES
from pvdesk.ui.glossary import GLOSSARY, explain, terms_in, tip, tip_text

# Words a pathologist should not meet in an explanation.
ML_JARGON = ("logit", "softmax", "gradient", "regulari", "hyperparameter", "overfit", "tensor",
             "optimi", "cross-entropy", "logistic", "hidden layer", "neuron", "inference",
             "feature vector", "embedding space", "harmonic", "bootstrap")


def test_every_term_is_found_by_its_own_name_and_explained_plainly():
    for key, term in GLOSSARY.items():
        assert term.plain and term.title and term.patterns, key
        assert key in terms_in(term.title), (key, term.title)
        low = term.plain.lower()
        assert not [w for w in ML_JARGON if w in low], (key, term.plain)
        assert len(re.findall(r"[.!?](\s|$)", term.plain)) <= 3, key  # one or two sentences
        assert f"{term.title}: {term.plain}" in explain(key)


def test_terms_in_texts_the_window_shows():
    assert terms_in("Most uncertain first (entropy)") == ["entropy"]
    assert terms_in("Smallest top-2 margin") == ["margin"]
    assert set(terms_in("Expected calibration error")) == {"calibration"}
    assert set(terms_in("macro average")) == {"macro"}
    assert "linear_probe" in terms_in("clip-linear") and "mlp" in terms_in("clip-mlp")
    assert terms_in("Tile side") == ["tile_size"]
    assert terms_in("Benign / malignant roll-up") == ["rollup"]
    assert terms_in("p") == ["probability"] and terms_in("Opacity") == ["opacity"]
    # a bundle's name is a name, not the term: demo-resnet50 is not "ResNet50" jargon
    assert terms_in("demo-resnet50") == [] and terms_in("demo-clip-rn50") == []
    assert terms_in("Exported CSV files (clip_predictions.csv)") == []
    with pytest.raises(KeyError):
        explain("no-such-term")


def test_tip_helpers(qtbot):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    tip(label, "batch", before="Tiles per step.")
    assert label.toolTip().startswith("Tiles per step.") and GLOSSARY["batch"].plain in \
        label.toolTip()
    tip_text(label, "Computing embeddings, 3/10")
    assert GLOSSARY["embeddings"].plain in label.toolTip()
    tip_text(label, "nothing to explain")
    assert label.toolTip() == ""


def shown_clean(qtbot, widget) -> None:
    qtbot.addWidget(widget)
    widget.resize(max(widget.width(), 900), max(widget.height(), 640))
    widget.show()
    qtbot.waitExposed(widget)
    assert not unexplained(widget), "\n".join(unexplained(widget))


def test_run_and_settings_dialogs(qtbot, pvdesk_home):
    from pvdesk.models import find_bundles
    from pvdesk.ui.run_dialog import RunDialog
    from pvdesk.ui.settings import Settings
    from pvdesk.ui.settings_dialog import SettingsDialog

    s = Settings()
    dlg = RunDialog(s, bundles=find_bundles([]))
    shown_clean(qtbot, dlg)
    assert GLOSSARY["tile_size"].plain in dlg.tile_um.toolTip()
    assert GLOSSARY["device"].plain in dlg.device.toolTip()
    shown_clean(qtbot, SettingsDialog(s))


@pytest.mark.parametrize("head", ["clip-linear", "clip-mlp", "resnet50"])
def test_retrain_dialog_every_head(qtbot, pvdesk_home, head):
    from pvdesk.ui.retrain_dialog import PROGRESS, RetrainDialog

    dlg = RetrainDialog(store_note="3 of 10 tiles have a reviewer's label (one slide)")
    dlg.model.choose(head)
    shown_clean(qtbot, dlg)
    dlg.tabs.setCurrentIndex(PROGRESS)
    assert not unexplained(dlg), "\n".join(unexplained(dlg))
    assert GLOSSARY["learning_rate"].plain in dlg.model.lr.toolTip()
    item_tip = dlg.model.head.itemData(dlg.model.head.currentIndex(),
                                       Qt.ItemDataRole.ToolTipRole)
    assert GLOSSARY[{"clip-linear": "linear_probe", "clip-mlp": "mlp",
                     "resnet50": "finetune"}[head]].plain in item_tip


def test_heatmap_panel_and_review_dock(qtbot):
    from pvdesk.ui.overlay_panel import OverlayPanel
    from pvdesk.ui.review_dock import ReviewDock

    panel = OverlayPanel()
    panel.set_models(["demo-resnet50"], list(CLASS_NAMES))
    shown_clean(qtbot, panel)
    assert panel.layer.count() == 2 + len(CLASS_NAMES)
    dock = ReviewDock()
    shown_clean(qtbot, dock)
    tips = [dock.order.itemData(i, Qt.ItemDataRole.ToolTipRole)
            for i in range(dock.order.count())]
    assert GLOSSARY["entropy"].plain in tips[0] and GLOSSARY["margin"].plain in tips[1]
    head_tip = dock.model.headerData(2, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert GLOSSARY["probability"].plain in head_tip
