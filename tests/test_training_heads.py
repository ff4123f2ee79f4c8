"""CLIP heads end to end, offline, on the demo CLIP RN50 (random weights, real architecture).

Colour-coded classes make the signal real: a linear probe on the random backbone's
embeddings must beat chance by far. The exported bundles load and run through pvdesk, and
`evaluate` reproduces the training-time numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from training_fixtures import colour_dataset

from pvdesk.models import resolve_bundle
from training.cli import main
from training.data import read_manifest
from training.data.source import SampleReader
from training.embeddings import compute_embeddings


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One PVDESK_HOME for the module, so the embedding cache is shared by the tests."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("pvdesk-home")
    mp.setenv("PVDESK_HOME", str(root))
    mp.setenv("PVDESK_OFFLINE", "1")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small shared CPU: one thread is several times faster
    yield root
    torch.set_num_threads(threads)
    mp.undo()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return colour_dataset(tmp_path_factory.mktemp("colours"), classes=4, patients=3,
                          per_patient=2)


def _json_events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _batch(samples, size):
    import torch

    reader = SampleReader()
    try:
        return torch.from_numpy(np.stack([reader.array(s, size) for s in samples]))
    finally:
        reader.close()


def test_linear_head_end_to_end(home, data, tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    out = tmp_path / "linear"
    rc = main(["train", "--data", str(data), "--head", "clip-linear", "--backbone",
               "demo-clip-rn50", "--out", str(out), "--progress", "json", "--bootstrap", "50",
               "--workers", "1"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    events = _json_events(cap.out)  # every stdout line is JSON
    assert events[-1]["event"] == "done"
    assert any(e["event"] == "stage" and e["stage"] == "embeddings" for e in events)
    metrics = events[-1]["metrics"]
    assert metrics["accuracy"] >= 0.75  # chance is 0.25

    bundle = resolve_bundle(out)
    # a head on a random-weight backbone is untrained, whatever its own training
    assert bundle.kind == "clip-linear" and not bundle.trained
    assert bundle.manifest["trained"] is False
    assert "backbone demo-clip-rn50 is untrained" in bundle.untrained_reasons[0]
    prov = bundle.provenance
    assert prov["metrics"] == metrics and len(prov["data_hash"]) == 64
    assert prov["config"]["seed"] == 0 and prov["config"]["head"] == "clip-linear"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["accuracy"] == metrics["accuracy"]

    # The bundle runs through pvdesk, and its probabilities are sklearn's predict_proba
    # (refitted here on the cached training embeddings with the C the run chose).
    split = read_manifest(out / "split.csv")
    train, test = split.split("train"), split.split("test")
    clf = bundle.load("cpu", "fp32")
    out_test = clf.predict(_batch(test, 224))
    emb_train = compute_embeddings(clf, train)  # the cache: same backbone, same images
    y = [bundle.classes.index(s.label) for s in train]
    lr = LogisticRegression(C=bundle.manifest["head"]["C"], max_iter=3000, random_state=0)
    lr.fit(emb_train, y)
    np.testing.assert_allclose(out_test.probs.numpy(),
                               lr.predict_proba(out_test.embeddings.numpy()), atol=2e-3)
    pred = out_test.probs.argmax(1).tolist()
    acc = np.mean([bundle.classes[p] == s.label for p, s in zip(pred, test, strict=True)])
    assert acc == pytest.approx(metrics["accuracy"])

    # evaluate reproduces the training-time evaluation (its own test split, from split.csv)
    rc = main(["evaluate", "--model", str(out), "--data", str(data), "--progress", "json",
               "--bootstrap", "50"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    done = _json_events(cap.out)[-1]
    assert {k: done["metrics"][k] for k in metrics} == metrics
    assert done["metrics"]["contaminated"] is False  # its own test split: held out
    assert resolve_bundle(out).provenance["evaluations"]


def test_mlp_head_end_to_end(home, data, tmp_path, capsys):
    out = tmp_path / "mlp"
    rc = main(["train", "--data", str(data), "--head", "clip-mlp", "--backbone",
               "demo-clip-rn50", "--out", str(out), "--progress", "json", "--epochs", "40",
               "--bootstrap", "50", "--workers", "1"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    events = _json_events(cap.out)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 41))
    assert all({"train_loss", "val_loss", "val_macro_f1", "eta_s"} <= set(e) for e in epochs)
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    done = events[-1]
    assert done["event"] == "done" and done["metrics"]["accuracy"] >= 0.75
    for f in ("report.md", "metrics.json", "confusion.png", "curves.png", "split.csv"):
        assert (out / f).is_file()
    bundle = resolve_bundle(out)
    assert bundle.kind == "clip-mlp" and bundle.manifest["head"]["hidden"] == 512
    assert bundle.provenance["best_epoch"] >= 1
    clf = bundle.load("cpu", "fp32")
    test = read_manifest(out / "split.csv").split("test")
    probs = clf.predict(_batch(test, 224)).probs
    acc = np.mean([bundle.classes[p] == s.label
                   for p, s in zip(probs.argmax(1).tolist(), test, strict=True)])
    assert acc == pytest.approx(done["metrics"]["accuracy"])


def test_zero_shot_evaluation_without_training(home, data, tmp_path, capsys):
    """`evaluate` on a clip-zeroshot bundle. Its class embeddings are stored in the bundle
    (a form pvdesk loads), which spares this test the text tower; the built-in zero-shot
    bundles take the same path after computing theirs from the prompts."""
    import torch

    from pvdesk.models import write_bundle
    from pvdesk.taxonomy import CLASS_NAMES

    demo = resolve_bundle("demo-clip-rn50")
    m = dict(demo.manifest, name="zs-test", trained=True)
    gen = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(8, 1024, generator=gen), dim=1)
    write_bundle(tmp_path / "zs-test", m, {"zeroshot.class_embeddings": emb,
                                           "zeroshot.logit_scale": torch.tensor(4.6052)})
    out = tmp_path / "zs-report"
    rc = main(["evaluate", "--model", str(tmp_path / "zs-test"), "--data", str(data),
               "--split", "all", "--out", str(out), "--bootstrap", "20", "--progress", "json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    events = _json_events(cap.out)
    assert events[-1]["event"] == "done" and events[-1]["metrics"]["n"] == 24
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["classes"] == list(CLASS_NAMES)
    assert sum(r["support"] for r in saved["metrics"]["per_class"].values()) == 24
    assert (out / "report.md").is_file() and (out / "confusion.png").is_file()
    # the bundle's manifest records the evaluation (a user bundle; built-ins are left alone)
    assert resolve_bundle(tmp_path / "zs-test").provenance["evaluations"]
