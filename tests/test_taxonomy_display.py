"""What a custom taxonomy looks like: heatmap layers and the summary's groups, the overlay panel's
legend, the review dock's key hint and buttons, the Review menu, long legends, team hints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from taxonomy_support import TSN, write_taxonomy_json

from pvdesk.taxonomy import Taxonomy, load_taxonomy_file

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))


def test_heatmap_and_summary_follow_the_taxonomy_groups(tmp_path):
    from test_heatmap import _grid, _tiles

    from pvdesk.heatmap import ARGMAX, ROLLUP, HeatmapGrid, render
    from pvdesk.predict.summary import NO_RULE, ModelTally, summary_text

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    plain = Taxonomy.from_names(TSN)
    hm = HeatmapGrid(_grid(_tiles()), TSN, taxonomy=plain)
    hm.add(_tiles(), probs)
    assert hm.layers == (*TSN, ARGMAX)  # no groups: no roll-up layer
    with pytest.raises(KeyError, match="no roll-up"):
        render(hm, ROLLUP)
    img = np.asarray(render(hm, "tumor", opacity=1.0))
    assert tuple(img[0, 0, :3]) == tuple(int(plain.colour_of("tumor")[i:i + 2], 16)
                                         for i in (1, 3, 5))
    t = ModelTally("m", TSN, True, plain)
    t.add(probs)
    d = t.to_dict()
    assert d["slide_call"] is None and d["slide_call_rule"] == NO_RULE
    assert d["tiles_per_group"] == {} and d["malignant_share"] is None

    p = write_taxonomy_json(tmp_path, {"classes": [{"name": "tumor", "group": "malignant"},
                                      {"name": "stroma", "group": "benign"},
                                      {"name": "normal", "group": "benign"}]})
    grouped = load_taxonomy_file(p)
    hm = HeatmapGrid(_grid(_tiles()), TSN, taxonomy=grouped)
    hm.add(_tiles(), probs)
    assert ROLLUP in hm.layers
    assert np.nanmax(hm.values(ROLLUP)) <= 1.0
    t = ModelTally("m", TSN, True, grouped)
    t.add(probs)
    d = t.to_dict()
    assert d["tiles_per_group"] == {"malignant": 1, "benign": 2}
    assert d["slide_call"] == "malignant"  # 1 of 3 tiles >= 10%
    info = {"models": [d], "source": "s", "grid": "g", "seconds": 1.0, "tiles_per_s": 3.0}
    assert "malignant 1, benign 2" in summary_text(info)


def test_heatmap_panel_layers_and_legend_follow_a_grouped_taxonomy_file(qtbot, tmp_path):
    from pvdesk.heatmap import ARGMAX, ROLLUP
    from pvdesk.ui.overlay_panel import OverlayPanel

    p = write_taxonomy_json(tmp_path, {"name": "tsn", "classes": [
        {"name": "tumor", "display": "Tumour", "colour": "#000000", "group": "malignant"},
        {"name": "stroma", "group": "benign"},
        {"name": "normal", "display": "Normal tissue", "group": "benign"}]})
    tax = load_taxonomy_file(p)
    panel = OverlayPanel()
    qtbot.addWidget(panel)
    panel.resize(320, 420)
    panel.set_models(["tsn"], TSN, tax)
    layers = [panel.layer.itemData(i) for i in range(panel.layer.count())]
    assert layers == [ARGMAX, ROLLUP, *TSN]
    assert panel.layer.itemText(1) == "Benign / malignant roll-up"
    assert panel.layer.itemText(2) == "1  Tumour"
    panel.update_legend(ARGMAX, TSN, tax)
    assert panel.legend._entries == [("1  Tumour", "#000000"), ("2  Stroma", "#0072b2"),
                                     ("3  Normal tissue", "#009e73")]
    panel.show()
    qtbot.waitExposed(panel)
    SHOTS.mkdir(parents=True, exist_ok=True)
    panel.grab().save(str(SHOTS / "taxonomy_legend_grouped.png"))
    panel.update_legend(ROLLUP, TSN, tax)
    assert panel.legend._gradient == (["#0072b2", "#e69f00"], "benign", "malignant")
    panel.set_models(["plain"], TSN, Taxonomy.from_names(TSN))  # no groups: no roll-up
    assert ROLLUP not in [panel.layer.itemData(i) for i in range(panel.layer.count())]


def test_the_key_hint_says_which_classes_have_no_key(qtbot):
    from pvdesk.ui.review_dock import ReviewDock, key_range

    assert key_range(Taxonomy.breakhis()) == "1–8 subtype"
    assert key_range(Taxonomy.from_names(TSN)) == "1–3 class"
    twelve = Taxonomy.from_names([f"c{i}" for i in range(12)])
    assert "the other 3 classes have no key" in key_range(twelve)
    dock = ReviewDock()
    qtbot.addWidget(dock)
    dock.set_taxonomy(twelve)
    assert len(dock.key_buttons) == 11  # 9 keyed classes, 0 and U
    assert dock.klass.count() == 13 and dock.diagnosis.findData("c11") > 0
    dock.set_mode(True)
    assert "other 3 classes have no key" in dock.hint.text()
    dock.show()
    old = list(dock.key_buttons.values())
    assert all(b.isVisible() for b in old)
    dock.set_taxonomy(Taxonomy.from_names(TSN))  # another run: its buttons replace these
    assert len(dock.key_buttons) == 5 and not any(b.isVisible() for b in old)
    assert dock.hint.text().startswith("<b>Keys:</b> 1–3 class")


def test_the_review_menu_lists_every_class_and_labels_keyless_ones_by_name(qtbot):
    from PySide6.QtWidgets import QMainWindow, QMenu

    from pvdesk.ui.review_menus import set_label_actions

    w = QMainWindow()
    qtbot.addWidget(w)
    w.review_menu = QMenu("Review", w)
    w.review_label_end = w.review_menu.addSeparator()
    w.review_label_actions = []
    keys, labelled = [], []
    twelve = Taxonomy.from_names([f"c{i}" for i in range(12)])
    set_label_actions(w, twelve, keys.append, label=labelled.append)
    texts = [a.text() for a in w.review_label_actions]
    assert texts[0] == "Label as C0\t1" and texts[11] == "Label as C11"
    assert texts[-2:] == ["Label as Non-tissue / artefact\t0", "Label as Uncertain\tU"]
    w.review_label_actions[0].trigger()
    w.review_label_actions[11].trigger()
    assert keys == ["1"] and labelled == ["c11"]
    set_label_actions(w, Taxonomy.breakhis(), keys.append)  # another run: replaced, not added
    assert len(w.review_label_actions) == 10
    assert [a for a in w.review_menu.actions() if a.text().startswith("Label as")] == \
        w.review_label_actions


def test_a_long_taxonomy_keeps_its_legends_bounded(qtbot):
    from PIL import Image
    from test_heatmap import _grid, _tiles

    from pvdesk.heatmap import ARGMAX, HeatmapGrid, figure
    from pvdesk.ui.overlay_panel import MAX_LEGEND, Legend

    names = [f"c{i}" for i in range(300)]
    tax = Taxonomy.from_names(names)
    legend = Legend()
    qtbot.addWidget(legend)
    legend.show_classes(names, tax)
    assert len(legend._entries) == MAX_LEGEND and legend._entries[-1] == (
        "… and 281 more classes (Layer list)", None)
    assert legend.height() <= MAX_LEGEND * 20 + 6
    legend.grab()  # paints the count line without a swatch
    hm = HeatmapGrid(_grid(_tiles()), names, taxonomy=tax)
    probs = np.full((3, 300), 1 / 300)
    hm.add(_tiles(), probs)
    img = figure(Image.new("RGB", (400, 400), "white"), hm, ARGMAX, "m")
    assert img.height < 400 + 600


def test_team_hints_follow_the_runs_keys(qtbot):
    """Blinded reading and adjudication name the run's keys, not BreakHis's 1–8."""
    from pvdesk.app.team import ADJUDICATOR, TeamState
    from pvdesk.ui.review_dock import ReviewDock
    from pvdesk.ui.team_view import apply_to_dock

    dock = ReviewDock()
    qtbot.addWidget(dock)
    dock.set_taxonomy(Taxonomy.from_names(TSN))
    apply_to_dock(dock, TeamState("bob", blinded_setting=True))
    dock.set_mode(True)
    assert "<b>Keys:</b> 1–3 class" in dock.hint.text() and "1–8" not in dock.hint.text()
    apply_to_dock(dock, TeamState("carol", role=ADJUDICATOR, disputed=frozenset()))
    assert "1–3 / 0 / U record the consensus" in dock.hint.text()
