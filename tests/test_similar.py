"""Similar tiles: exact cosine search over stored float16 embeddings (pvdesk.app.similar),
`pvdesk similar`, and the float16 storage of `predict --embeddings` runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pvdesk.app.similar import NoEmbeddings, SimilarTiles, load_embeddings
from pvdesk.cli import main
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import TilePrediction
from pvdesk.taxonomy import CLASS_NAMES

DIM = 64


def _store(path, vectors, dtype="float16", slide="s1"):
    store = ReviewStore(path, reviewer="t")
    store.add_slide(slide, f"/data/{slide}.svs", {})
    settings = {"embedding_dtype": dtype} if dtype else {}
    run = store.add_run("m", "1", "h", list(CLASS_NAMES), "cpu", settings)
    probs = [1 / len(CLASS_NAMES)] * len(CLASS_NAMES)
    store.add_predictions(run, slide, [
        TilePrediction(f"/data/{slide}.svs", (i % 50) * 100, (i // 50) * 100, 100, 100, 0.5,
                       probs, embedding=v) for i, v in enumerate(vectors)])
    ids = [r.tile_id for r in store.tiles(run_id=run)]
    return store, run, ids


def _vectors(n=400, seed=0):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_float16_storage_round_trips(tmp_path):
    v = _vectors(10)
    store, run, ids = _store(tmp_path / "s.pvdb", v)
    with store:
        blob = store.con.execute("SELECT embedding FROM predictions LIMIT 1").fetchone()[0]
        assert len(blob) == DIM * 2  # float16
        np.testing.assert_allclose(store.embedding(ids[0], run), v[0], rtol=1e-3, atol=1e-3)
        m = load_embeddings(store, run)
        assert m.unit.dtype == np.float32 and m.unit.shape == (10, DIM)
        np.testing.assert_allclose(np.linalg.norm(m.unit, axis=1), 1, atol=1e-5)
    old, run2, ids2 = _store(tmp_path / "old.pvdb", v, dtype=None)  # older runs: float32
    with old:
        np.testing.assert_array_equal(old.embedding(ids2[3], run2), v[3])


def test_duplicates_and_near_duplicates_come_first(tmp_path):
    rng = np.random.default_rng(1)
    v = _vectors(400)
    q = 17
    v[100] = v[q]  # exact duplicate
    v[200] = v[q] + 0.05 * rng.standard_normal(DIM)  # near duplicates
    v[300] = v[q] + 0.10 * rng.standard_normal(DIM)
    v[301] = 3.0 * v[q]  # same direction, another length: cosine 1
    store, run, ids = _store(tmp_path / "s.pvdb", v)
    with store:
        found = SimilarTiles(store).similar(run, [ids[q]], k=4)
    got = [ids.index(n.tile_id) for n in found]
    assert set(got[:2]) == {100, 301} and got[2:] == [200, 300]
    assert found[0].score == pytest.approx(1.0, abs=1e-3)
    assert ids[q] not in [n.tile_id for n in found]
    assert all(a.score >= b.score for a, b in zip(found, found[1:], strict=False))


def test_matches_brute_force_and_selection_query(tmp_path):
    v = _vectors(300, seed=3)
    store, run, ids = _store(tmp_path / "s.pvdb", v)
    with store:
        svc = SimilarTiles(store)
        found = svc.similar(run, [ids[5], ids[9]], k=24)
    v16 = v.astype(np.float16).astype(np.float32)
    unit = v16 / np.linalg.norm(v16, axis=1, keepdims=True)
    q = unit[[5, 9]].mean(0)
    q /= np.linalg.norm(q)
    s = unit @ q
    s[[5, 9]] = -np.inf
    want = np.argsort(-s, kind="stable")[:24]
    assert [ids.index(n.tile_id) for n in found] == list(want)
    assert len(found) == 24


def test_cache_refreshes_when_the_run_grows(tmp_path):
    v = _vectors(20)
    store, run, ids = _store(tmp_path / "s.pvdb", v)
    with store:
        svc = SimilarTiles(store)
        assert len(svc.matrix(run)) == 20
        assert svc.matrix(run) is svc.matrix(run)  # cached
        store.add_predictions(run, "s1", [TilePrediction(
            "/data/s1.svs", 9000, 9000, 100, 100, 0.5, [1 / 8] * 8, embedding=v[0])])
        assert len(svc.matrix(run)) == 21


def test_run_without_embeddings_is_one_clear_error(tmp_path):
    store, run, ids = _store(tmp_path / "s.pvdb", [None] * 5)
    with store, pytest.raises(NoEmbeddings, match="--embeddings"):
        SimilarTiles(store).similar(run, [ids[0]])


def test_similar_cli(tmp_path, capsys):
    v = _vectors(60)
    v[40] = v[7]
    store, run, ids = _store(tmp_path / "s.pvdb", v)
    store.close()
    assert main(["similar", str(tmp_path / "s.pvdb"), "--run", str(run), "--tile", "700,0",
                 "--k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"]["tile_x"] == 700 and len(out["similar"]) == 3
    first = out["similar"][0]
    assert (first["tile_x"], first["tile_y"]) == (4000, 0) and first["cosine"] > 0.999
    assert main(["similar", str(tmp_path / "s.pvdb"), "--run", str(run), "--tile", "750,50",
                 "--k", "2"]) == 0  # a point inside the tile works too
    assert "4000,0" in capsys.readouterr().out
    assert main(["similar", str(tmp_path / "s.pvdb"), "--run", str(run), "--tile",
                 "99999,0"]) == 2
    assert "no tile at" in capsys.readouterr().err


def test_project_search_spans_the_slides_of_one_bundle(tmp_path, capsys):
    v = _vectors(40)
    store, run1, ids1 = _store(tmp_path / "p.pvdb", v, slide="s1")
    w = _vectors(40, seed=9)
    w[11] = v[3] * 1.01  # the best match lives on another slide
    store.add_slide("s2", "/data/s2.svs", {})
    run2 = store.add_run("m", "1", "h", list(CLASS_NAMES), "cpu", {"embedding_dtype": "float16"})
    store.add_predictions(run2, "s2", [
        TilePrediction("/data/s2.svs", i * 100, 0, 100, 100, 0.5, [1 / 8] * 8, embedding=e)
        for i, e in enumerate(w)])
    other = store.add_run("other-model", "1", "h2", list(CLASS_NAMES), "cpu",
                          {"embedding_dtype": "float16"})
    store.add_predictions(other, "s2", [TilePrediction(  # another bundle: never searched
        "/data/s2.svs", 5000, 0, 100, 100, 0.5, [1 / 8] * 8, embedding=v[3])])
    with store:
        svc = SimilarTiles(store)
        assert svc.project_runs(run1) == [run1, run2]
        found = svc.similar_in_project(run1, [ids1[3]], k=5)
        assert found[0].run_id == run2 and found[0].score > 0.999
        assert len(found) == 5 and ids1[3] not in [n.tile_id for n in found]
    assert main(["similar", str(tmp_path / "p.pvdb"), "--run", str(run1), "--tile", "300,0",
                 "--k", "3", "--project", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["similar"][0]
    assert (first["slide_id"], first["tile_x"], first["run"]) == ("s2", 1100, run2)
