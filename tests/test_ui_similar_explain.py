"""The window's S (similar tiles) and E (Grad-CAM) in review mode, offscreen, with
screenshots. The run's classifier is the engine's FakeClassifier (mean-colour embeddings)
so the run is instant; E loads the real demo-resnet50 through pvdesk.explain."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from inference_fakes import FakeClassifier
from PySide6.QtCore import Qt
from slide_factory import paint, write_pyramid
from ui_support import DESKTOP, open_window

from pvdesk.models.bundle import Bundle
from pvdesk.ui.worker import RunRequest

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, pvdesk_home):
    monkeypatch.setattr(Bundle, "load", lambda self, *a, **k: FakeClassifier(self.classes))
    img = paint(1600, 1200, [(40, 40, 1560, 1160)], seed=5)
    slide = write_pyramid(tmp_path / "slide.tif", img, levels=3, mpp=0.5)
    w = open_window(qtbot, slide, DESKTOP)
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=56.0, batch_size=16,
                                  embeddings=True))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    assert states == ["done"]
    n = len(w.overlay.info.grid.tiles)
    qtbot.waitUntil(lambda: w.review.session is not None
                    and len(w.review.session.entries) == n, timeout=20000)
    return w


def test_s_selects_the_nearest_tiles_and_one_key_labels_them(qtbot, window):
    w = window
    r, s = w.review, w.review.session
    r.set_mode(True)
    current = s.current
    store = s.store
    ids = sorted(s.all)
    emb = np.stack([store.embedding(t, s.run_id) for t in ids])
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    score = unit @ unit[ids.index(current.tile_id)]
    score[ids.index(current.tile_id)] = -np.inf
    kth = np.sort(score)[::-1][r.similar.k - 1]
    qtbot.keyClick(w.view, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: len(s.selection) == r.similar.k + 1, timeout=10000)
    got = {n.tile_id for n in r.similar.last}
    # the exact top k (mean-colour embeddings have near ties: compare scores, not ids)
    assert min(score[ids.index(t)] for t in got) >= kth - 1e-5
    assert s.selection == got | {current.tile_id}
    assert "selected" in w.status.currentMessage()
    w.view.fit()
    qtbot.wait(400)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "similar_selected.png"))
    qtbot.keyClick(w.view, Qt.Key.Key_6)  # lobular carcinoma for all of them
    qtbot.waitUntil(lambda: s.pending == 0, timeout=10000)
    labelled = {rec.tile_id for rec in store.tiles(run_id=s.run_id) if rec.label}
    assert labelled == got | {current.tile_id}


def test_e_shows_the_map_over_the_tile_with_its_own_opacity(qtbot, window):
    w = window
    r, s = w.review, w.review.session
    r.set_mode(True)
    cur = s.current
    w.view.fit()
    for _ in range(3):
        w.view.zoom_in()
    w.view.center_on(cur.tile_x + cur.tile_w / 2, cur.tile_y + cur.tile_h / 2)
    qtbot.keyClick(w.view, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: r.explain.last is not None, timeout=60000)
    e = r.explain.last
    assert e.cam.shape == (224, 224) and 0 <= e.cam.min() and e.cam.max() <= 1
    assert r.explain.layer.shown and r.explain.layer.rect == (cur.tile_x, cur.tile_y,
                                                              cur.tile_w, cur.tile_h)
    assert r.explain.panel.isVisible()
    assert e.class_name.replace("_", " ") in r.explain.caption.text()
    r.explain.slider.setValue(80)
    assert r.explain.layer.opacity == pytest.approx(0.8)
    qtbot.wait(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "explain_tile.png"))
    qtbot.keyClick(w.view, Qt.Key.Key_J)  # another tile: the map (of the old one) hides
    assert not r.explain.layer.shown
    qtbot.keyClick(w.view, Qt.Key.Key_K)
    assert r.explain.layer.shown
    qtbot.keyClick(w.view, Qt.Key.Key_E)  # E again hides it
    assert not r.explain.layer.shown and r.explain.layer.image is None


def test_search_box_lights_up_the_slide_and_selects_the_best_tiles(qtbot, window,
                                                                     monkeypatch):
    """The run's stored (mean-colour) embeddings against a phrase vector: a stand-in text
    encoder whose phrase embedding is one tile's embedding, so that tile is the best."""
    import pvdesk.text_search
    from pvdesk.text_search import TextEncoder

    w = window
    r, s = w.review, w.review.session
    target = sorted(s.all)[7]
    vec = s.store.embedding(target, s.run_id)

    class Stand(TextEncoder):
        def embed(self, phrases, templates=("{}",)):
            return np.stack([vec for _ in phrases])

    monkeypatch.setattr(pvdesk.text_search, "load_text_encoder",
                        lambda bundle, weights=None: Stand(None, "", 100.0, bundle))
    r.set_mode(True)
    r.search.box.setText("mucin pools")
    qtbot.keyClick(r.search.box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: r.search.last is not None, timeout=20000)
    phrase, result = r.search.last
    assert phrase == "mucin pools" and r.search.layer.image is not None
    assert result.best(0, 1)[0][1] > 0.999
    assert len(s.selection) == 24
    w.view.fit()
    qtbot.wait(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "text_search.png"))
    r.search.box.clear()
    qtbot.keyClick(r.search.box, Qt.Key.Key_Return)
    assert r.search.layer.image is None
