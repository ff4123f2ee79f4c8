"""Text search: the phrase embedding is open_clip's encode_text on the same tokens, the
text tower is the one the bundle's zero-shot head was made with, and the heatmap is the
cosine map of the stored embeddings (`pvdesk query`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pvdesk.cli import main
from pvdesk.models import resolve_bundle
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import TilePrediction
from pvdesk.taxonomy import CLASS_NAMES
from pvdesk.text_search import load_text_encoder, query_run, value_cells


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder(resolve_bundle("demo-clip-rn50"))


def test_phrase_embedding_is_open_clip_encode_text(encoder):
    import open_clip
    import torch

    phrases = ["mucin pools", "dense lymphocytic infiltrate"]
    got = encoder.embed(phrases)
    tok = open_clip.get_tokenizer(encoder.tokenizer_name)
    with torch.no_grad():
        want = torch.nn.functional.normalize(encoder.model.encode_text(tok(phrases)).float(),
                                             dim=-1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.shape == (2, 1024)


def test_text_tower_is_the_one_behind_the_zero_shot_head(encoder):
    """The bundle's class embeddings (shipped cache, made by the zero-shot path) come out of
    this encoder for the same prompt texts."""
    from safetensors.numpy import load_file

    from pvdesk.models.prompts import class_texts
    from pvdesk.models.text import class_embeddings

    b = encoder.bundle
    texts = class_texts(b)
    c = min(range(len(b.classes)), key=lambda i: len(texts[b.classes[i]]))  # one class: time
    mine = class_embeddings(encoder.model, encoder.tokenizer_name,
                            {b.classes[c]: texts[b.classes[c]]}).numpy()
    shipped = load_file(str(b.path / "text_embeddings.safetensors"))["class_embeddings"]
    np.testing.assert_allclose(mine[0], shipped[c], atol=1e-5)


def _store(path, emb):
    store = ReviewStore(path, reviewer="t")
    store.add_slide("s1", "/nowhere/s1.svs", {})
    run = store.add_run("demo-clip-rn50", "1", "h", list(CLASS_NAMES), "cpu",
                        {"embedding_dtype": "float16", "stride": 100, "side": 100})
    store.add_predictions(run, "s1", [
        TilePrediction("/nowhere/s1.svs", (i % 4) * 100, (i // 4) * 100, 100, 100, 0.5,
                       [1 / 8] * 8, embedding=e) for i, e in enumerate(emb)])
    return store, run


def test_query_heatmap_is_the_cosine_map(tmp_path, encoder, capsys, monkeypatch):
    import pvdesk.text_search

    monkeypatch.setattr(pvdesk.text_search, "load_text_encoder", lambda *a: encoder)
    rng = np.random.default_rng(0)
    v = encoder.embed(["mucin pools"])[0]
    emb = rng.standard_normal((12, v.shape[0])).astype(np.float32)
    emb[5] = v * 2.0  # the phrase itself as a tile: cosine 1
    store, run = _store(tmp_path / "s.pvdb", emb)
    with store:
        res = query_run(store, run, v[None], ["mucin pools"], "s1")
    e16 = emb.astype(np.float16).astype(np.float32)
    want = (e16 / np.linalg.norm(e16, axis=1, keepdims=True)) @ v
    np.testing.assert_allclose(res.cosine[:, 0], want, atol=1e-5)
    cells = value_cells(res, 0, 100, (400, 300))
    np.testing.assert_allclose(cells.ravel(), want, atol=1e-5)  # row-major 4 x 3 tiles
    assert res.best(0, 1)[0][0].tile_x == 100 and res.best(0, 1)[0][0].tile_y == 100

    out = tmp_path / "heat.png"
    assert main(["query", str(tmp_path / "s.pvdb"), "--run", str(run), "mucin pools",
                 "--out", str(out), "--top", "2", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    best = rep["phrases"][0]["best"]
    assert (best[0]["tile_x"], best[0]["tile_y"]) == (100, 100) and best[0]["cosine"] > 0.999
    meta = Image.open(out).text
    assert meta["pvdesk:phrase"] == "mucin pools"
    assert meta["pvdesk:bundle"].startswith("demo-clip-rn50@") and "pvdesk:date" in meta
    assert main(["query", str(tmp_path / "s.pvdb"), "--run", str(run), "mucin", "stroma",
                 "--out", str(out)]) == 0
    assert (tmp_path / "heat-1.png").is_file() and (tmp_path / "heat-2.png").is_file()
    assert "closer to it than to the other phrases" in capsys.readouterr().out


def test_phrases_saved_as_a_prompt_set(tmp_path):
    from pvdesk.commands.query import save_prompt_set, split_phrases
    from pvdesk.errors import PvdeskError
    from pvdesk.models.prompts import load_prompt_set

    labels, phrases = split_phrases(["mucinous_carcinoma=mucin  pools", "MC=extracellular mucin",
                                     "ductal carcinoma=infiltrating ducts", "just words"])
    assert labels[:3] == ["mucinous_carcinoma", "mucinous_carcinoma", "ductal_carcinoma"]
    assert phrases[0] == "mucin pools" and labels[3] is None
    with pytest.raises(PvdeskError, match="CLASS=phrase"):
        save_prompt_set(tmp_path / "p.json", labels, phrases)
    path = save_prompt_set(tmp_path / "p.json", labels[:3], phrases[:3])
    obj, _ = load_prompt_set(str(path))
    assert obj["classes"] == {"mucinous_carcinoma": ["mucin pools", "extracellular mucin"],
                              "ductal_carcinoma": ["infiltrating ducts"]}
    with pytest.raises(PvdeskError, match="neither a BreakHis class nor a lowercase"):
        split_phrases(["Non sense!=mucin"])
    assert split_phrases(["tumor=sheets of atypical cells"]) == (  # a custom taxonomy's class
        ["tumor"], ["sheets of atypical cells"])
