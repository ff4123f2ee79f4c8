"""Broken model bundles: each is validated on its own, listed with its reason by `pvdesk
models`, skipped everywhere else; weights stay inside their bundle; no pickle ever runs."""

from __future__ import annotations

import json

import pytest
from hostile_inputs import bundle_inputs, good_bundle

from pvdesk.cli import main
from pvdesk.errors import ModelError
from pvdesk.models import find_bundles, resolve_bundle


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    marker = root.parent / "payload-ran"
    bundles = bundle_inputs(root / "models", marker)
    good_bundle(root / "models")
    return root / "models", bundles, marker


pytestmark = pytest.mark.usefixtures("pvdesk_home")


def test_each_broken_bundle_is_refused_with_one_line(broken):
    folder, bundles, marker = broken
    for case, path in bundles.items():
        with pytest.raises(ModelError) as err:
            resolve_bundle(str(path))
        text = str(err.value)
        assert "\n" not in text and str(path) in text, (case, text)
    assert not marker.exists()


def test_one_broken_bundle_never_hides_the_others(broken):
    folder, bundles, marker = broken
    errors: list[str] = []
    found = {b.name for b in find_bundles([folder], errors=errors)}
    assert "good-one" in found and "demo-resnet50" in found
    assert not found & {p.name for p in bundles.values()}
    for case, path in bundles.items():
        assert sum(str(path) in e for e in errors) == 1, case
    assert all("\n" not in e for e in errors)
    assert not marker.exists()


def test_a_broken_bundle_named_says_why(broken, monkeypatch):
    folder, bundles, _ = broken
    path = bundles["weights to /etc/passwd"]
    with pytest.raises(ModelError, match="broken and skipped.*outside the bundle folder"):
        resolve_bundle(path.name, extra_dirs=[folder])
    assert resolve_bundle("demo-resnet50", extra_dirs=[folder]).name == "demo-resnet50"


def test_models_verb_lists_the_broken_ones(broken, capsys):
    folder, bundles, marker = broken
    assert main(["models", "--dir", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {b["name"] for b in out["bundles"]}
    assert "good-one" in names and "demo-resnet50" in names
    assert len(out["errors"]) == len(bundles)
    assert not marker.exists()


@pytest.mark.parametrize("case, says", [
    ("manifest nested 200k deep", "nested"),
    ("manifest 5001-digit number", "digits"),
    ("tile_um NaN", "NaN"),
    ("tile_um Infinity", "Infinity"),
    ("tile_um 1e999", "out of range"),
    ("tile_um 0", "tile_um"),
    ("empty weights", "empty"),
    ("pickle as weights", "not a safetensors file"),
    ("weights to /etc/passwd", "outside the bundle folder"),
    ("weights link out of the folder", "outside the bundle folder"),
    ("huge safetensors header", "header claims"),
    ("backbone.path ../../etc/passwd", "outside the bundle folder"),
    ("backbone.path /etc/passwd", "not a weights file"),
    ("backbone.path link out", "outside the bundle folder"),
    ("tensor shape mismatch", "classes"),
    ("prompts escape", "outside the bundle folder"),
])
def test_reasons(broken, case, says):
    folder, bundles, _ = broken
    with pytest.raises(ModelError, match=says):
        resolve_bundle(str(bundles[case]))
