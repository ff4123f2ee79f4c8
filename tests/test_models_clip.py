"""CLIP kinds on a random-weight open_clip RN50: zero-shot, linear (= sklearn), MLP; round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from models_support import RN50_RANDOM, linear_tensors, manifest, mlp_tensors, tiles

from pvdesk.errors import ModelError
from pvdesk.models import resolve_bundle, write_bundle
from pvdesk.taxonomy import CLASS_NAMES

PROMPTS = {"templates": ["an H&E image of {}.", "a slide of {}."],
           "classes": {"benign": ["benign tissue", "a benign lesion"],
                       "malignant": ["carcinoma"]}}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("pvdesk_home")


@pytest.fixture(autouse=True)
def _home(home, monkeypatch):
    monkeypatch.setenv("PVDESK_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def zeroshot(tmp_path_factory, home):
    mp = pytest.MonkeyPatch()
    mp.setenv("PVDESK_HOME", str(home))
    folder = tmp_path_factory.mktemp("zs") / "zs"
    m = manifest("zs-test", "clip-zeroshot", classes=["benign", "malignant"],
                 backbone=dict(RN50_RANDOM, seed=1), prompts=PROMPTS)
    bundle = write_bundle(folder, m, {})
    clf = bundle.load(precision="fp32")
    mp.undo()
    return bundle, clf


def test_zeroshot_logits_are_scaled_cosine_of_prompt_ensembles(zeroshot):
    import open_clip

    from pvdesk.models.randinit import seeded

    bundle, clf = zeroshot
    # An independent build of the same seeded model gives the text side.
    with seeded(1):
        ref = open_clip.create_model("RN50", pretrained=None, force_image_size=64)
    tok = open_clip.get_tokenizer("RN50")
    with torch.no_grad():
        rows = []
        for c in bundle.classes:
            texts = [t.format(p) for t in PROMPTS["templates"] for p in PROMPTS["classes"][c]]
            e = F.normalize(ref.encode_text(tok(texts)), dim=-1)
            rows.append(F.normalize(e.mean(0), dim=-1))
        text = torch.stack(rows)
        scale = ref.logit_scale.exp()
    assert torch.allclose(clf.net.head.class_embeddings, text, atol=1e-5)
    x = tiles(3)
    with torch.inference_mode():
        raw = clf.net.visual(clf.prepare(x)).float()
    cos = F.cosine_similarity(raw[:, None, :], text[None, :, :], dim=-1)
    assert torch.allclose(clf.logits(x), scale * cos, atol=1e-4)
    out = clf.predict(x)
    assert torch.allclose(out.probs, (scale * cos).softmax(1), atol=1e-5)
    assert out.embeddings.shape == (3, 1024)
    assert torch.allclose(out.embeddings.norm(dim=1), torch.ones(3), atol=1e-5)
    assert out.probs.dtype == torch.float32 and out.probs.device.type == "cpu"


def test_zeroshot_text_embeddings_are_cached_in_a_writable_bundle(zeroshot, monkeypatch):
    import open_clip

    bundle, clf = zeroshot
    assert (bundle.path / "text_embeddings.safetensors").is_file()

    def boom(*a, **k):
        raise AssertionError("text tower used although the cache is there")

    monkeypatch.setattr(open_clip, "get_tokenizer", boom)
    again = resolve_bundle(bundle.path).load(precision="fp32")
    x = tiles(2)
    assert torch.allclose(again.logits(x), clf.logits(x), atol=1e-6)


def test_zeroshot_round_trip_with_backbone_in_bundle(zeroshot, tmp_path):
    bundle, clf = zeroshot
    m = dict(bundle.manifest, name="zs-copy", backbone={"source": "bundle", "model": "RN50"})
    copy = write_bundle(tmp_path / "copy", m, clf.export_tensors(include_backbone=True))
    clf2 = copy.load(precision="fp32")
    x = tiles(4, seed=3)
    assert torch.allclose(clf2.predict(x).probs, clf.predict(x).probs, atol=1e-6)


def test_linear_head_matches_sklearn_and_round_trips(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from pvdesk.models.heads import linear_tensors_from_sklearn

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 1024))
    y = np.repeat(np.arange(8), 6)
    emb = centres[y] + rng.normal(size=(48, 1024)) * 2
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    sk = LogisticRegression(C=10.0, max_iter=500).fit(emb, y)
    tensors = linear_tensors_from_sklearn(sk, list(CLASS_NAMES))
    bundle = write_bundle(tmp_path / "lin", manifest("lin", "clip-linear"), tensors)
    clf = resolve_bundle(tmp_path / "lin").load(precision="fp32")
    assert bundle.has_embeddings
    got = clf.head_logits(torch.from_numpy(emb)).softmax(1).numpy()
    np.testing.assert_allclose(got, sk.predict_proba(emb), atol=1e-5)
    out = clf.predict(tiles(4))  # and through the whole pipeline, on real image embeddings
    np.testing.assert_allclose(out.probs.numpy(), sk.predict_proba(out.embeddings.numpy()),
                               atol=1e-5)
    # round trip: the exported head in a new bundle gives the same outputs
    copy = write_bundle(tmp_path / "copy", manifest("lin2", "clip-linear"), clf.export_tensors())
    out2 = copy.load(precision="fp32").predict(tiles(4))
    assert torch.allclose(out2.probs, out.probs, atol=1e-6)


@pytest.mark.parametrize("order", [["benign", "malignant"], ["malignant", "benign"]])
def test_binary_linear_head_matches_sklearn(tmp_path, order):
    from sklearn.linear_model import LogisticRegression

    from pvdesk.models.bundle import Bundle
    from pvdesk.models.heads import build_head, linear_tensors_from_sklearn

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 64)).astype(np.float32)
    names = np.where(emb[:, 0] + 0.5 * rng.normal(size=40) > 0, "malignant", "benign")
    sk = LogisticRegression().fit(emb, names)
    assert sk.coef_.shape[0] == 1  # sklearn's binary form: one row
    tensors = linear_tensors_from_sklearn(sk, order)
    bundle = write_bundle(tmp_path / "bin", manifest("bin", "clip-linear", classes=order),
                          tensors)
    assert isinstance(bundle, Bundle)
    from pvdesk.models.clip import bundle_tensors

    head = build_head(bundle, bundle_tensors(bundle), 64, "test")
    got = head(torch.from_numpy(emb)).softmax(1).detach().numpy()
    want = sk.predict_proba(emb)[:, [list(sk.classes_).index(c) for c in order]]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_mlp_head_round_trips(tmp_path):
    b = write_bundle(tmp_path / "mlp", manifest("mlp", "clip-mlp", head={"dropout": 0.2}),
                     mlp_tensors(8))
    clf = b.load(precision="fp32")
    x = tiles(4, seed=5)
    out = clf.predict(x)
    assert out.probs.shape == (4, 8)
    assert torch.allclose(out.probs.sum(1), torch.ones(4), atol=1e-5)
    assert not torch.allclose(out.probs[0], out.probs[1])  # tiles differ
    emb = out.embeddings
    with torch.no_grad():
        h = F.relu(emb @ b_t(clf, "head.0.weight").T + b_t(clf, "head.0.bias"))
        want = (h @ b_t(clf, "head.3.weight").T + b_t(clf, "head.3.bias")).softmax(1)
    assert torch.allclose(out.probs, want, atol=1e-5)  # dropout is off in eval mode
    m = manifest("mlp2", "clip-mlp", backbone={"source": "bundle", "model": "RN50"})
    copy = write_bundle(tmp_path / "copy", m, clf.export_tensors(include_backbone=True))
    assert torch.allclose(copy.load(precision="fp32").predict(x).probs, out.probs, atol=1e-6)


def b_t(clf, key):
    return clf.export_tensors()[key]


def test_head_width_must_match_the_backbone(tmp_path):
    b = write_bundle(tmp_path / "w", manifest("w", "clip-linear"), linear_tensors(8, dim=512))
    with pytest.raises(ModelError, match=r"head\.weight.*512 columns.*1024-d"):
        b.load()


def test_demo_clip_rn50_is_untrained_deterministic_and_uses_its_shipped_text_cache(
        monkeypatch):
    import open_clip

    def stale(*a, **k):
        raise AssertionError(
            "pvdesk/resources/models/demo-clip-rn50/text_embeddings.safetensors is stale (the manifest "
            "or pvdesk/resources/prompts/breakhis-default.json changed): delete it, load the bundle "
            "once with a fresh PVDESK_HOME and copy the file from <PVDESK_HOME>/cache/"
            "text_embeddings/ back into the bundle folder")

    monkeypatch.setattr(open_clip, "get_tokenizer", stale)
    b = resolve_bundle("demo-clip-rn50")
    assert b.builtin and not b.trained and b.has_embeddings and b.classes == list(CLASS_NAMES)
    x = tiles(3, size=96, seed=4)
    out = b.load(precision="fp32").predict(x)
    again = b.load(precision="fp32").predict(x)
    assert torch.equal(out.probs, again.probs) and torch.equal(out.embeddings, again.embeddings)
    assert (out.probs - 1 / 8).abs().max() < 0.1  # random CLIP: near uniform ...
    assert (out.probs[0] - out.probs[1]).abs().max() > 1e-3  # ... but tiles still differ
