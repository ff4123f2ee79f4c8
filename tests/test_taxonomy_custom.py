"""Any taxonomy: the Taxonomy value, taxonomy files and a bundle's classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pvdesk.errors import ModelError
from pvdesk.models.manifest import validate_manifest
from pvdesk.taxonomy import (
    CLASS_NAMES,
    NON_TISSUE,
    SUBTYPES,
    UNCERTAIN,
    Taxonomy,
    colour_of,
    from_manifest,
    label_for_key,
    label_parts,
    load_taxonomy_file,
)

TSN = ["tumor", "stroma", "normal"]


def test_breakhis_is_the_built_in_with_todays_values():
    t = Taxonomy.breakhis()
    assert t.names == CLASS_NAMES and t.classes == SUBTYPES and t.is_breakhis
    assert t.groups == ("benign", "malignant") and t.benign_malignant
    for s in SUBTYPES:
        assert t.label_parts(s.name) == label_parts(s.name) == (s.key, s.label, s.code)
        assert t.colour_of(s.name) == colour_of(s.name) == s.colour
        assert t.label_for_key(s.key) == label_for_key(s.key) == s.name
    assert t.normalise("DC") == "ductal_carcinoma"
    assert Taxonomy.from_names(["DC", "adenosis"]) is t
    assert Taxonomy.from_dict(t.to_dict()) is t


def test_from_names_gives_keys_in_order_display_names_and_no_groups():
    t = Taxonomy.from_names(TSN)
    assert t.names == tuple(TSN) and not t.has_groups and not t.is_breakhis
    assert [t.label_for_key(k) for k in "123"] == TSN
    assert t.label_for_key("0") == NON_TISSUE and t.label_for_key("u") == UNCERTAIN
    assert t.label_for_key("4") is None
    assert t.label_parts("stroma") == ("2", "Stroma", "STR")
    assert t.review_labels == (*TSN, NON_TISSUE, UNCERTAIN)
    assert t.normalise("Tumor") == "tumor"
    with pytest.raises(KeyError):
        t.normalise("adenosis")
    assert t.rollup(TSN, np.ones((4, 3))).shape == (4, 0)
    assert Taxonomy.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_more_than_nine_classes_have_no_keys_past_nine():
    t = Taxonomy.from_names([f"c{i}" for i in range(12)])
    assert [s.key for s in t.classes] == [*"123456789", "", "", ""]
    assert len({s.colour for s in t.classes}) == 12
    assert t.label_parts("c10")[0] == ""


def _write(tmp_path, obj, name="taxonomy.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return p


def test_a_taxonomy_file_with_groups(tmp_path):
    p = _write(tmp_path, {"name": "tsn", "classes": [
        {"name": "tumor", "display": "Tumour", "colour": "#E69F00", "key": "3",
         "group": "malignant"},
        {"name": "stroma", "group": "benign"},
        {"name": "normal", "display": "Normal tissue", "group": "benign"}]})
    t = load_taxonomy_file(p)
    assert t.names == tuple(TSN) and t.benign_malignant
    assert [s.key for s in t.classes] == ["3", "1", "2"]
    assert t.colour_of("tumor") == "#e69f00" and t.display("normal") == "Normal tissue"
    assert t.group_of("stroma") == "benign"
    g = t.rollup(TSN, np.array([[0.5, 0.3, 0.2]]))
    assert g.tolist() == [[0.5, 0.5]] and t.groups == ("malignant", "benign")


@pytest.mark.parametrize("obj, words", [
    ({"classes": [{"name": "a", "colour": "red"}, {"name": "b"}]}, "is not a colour"),
    ({"classes": [{"name": "a", "key": "1"}, {"name": "b", "key": 1}]}, "key 1 is already"),
    ({"classes": [{"name": f"c{i}"} for i in range(12)]}, "12 classes"),
    ({"classes": [{"name": "a"}, {"name": "a"}]}, "listed twice"),
    ({"classes": [{"name": "a", "group": "x"}, {"name": "b"}]}, "some classes have a group"),
    ({"classes": [{"name": "a"}, {"name": "B c"}]}, "not a lowercase name"),
    ({"classes": [{"name": "a", "key": "0"}, {"name": "b"}]}, "not a key from 1 to 9"),
    ({"classes": [{"name": "a", "shape": 1}, {"name": "b"}]}, "unknown field 'shape'"),
    ([1, 2], "JSON object with a 'classes' list"),
    ("{not json", "not a usable taxonomy file"),
])
def test_bad_taxonomy_files_give_one_line_naming_the_file(tmp_path, obj, words):
    p = _write(tmp_path, obj)
    with pytest.raises(ModelError) as err:
        load_taxonomy_file(p)
    msg = str(err.value)
    assert msg.startswith(str(p) + ": ") and words in msg and "\n" not in msg, msg


def test_manifest_takes_custom_classes_and_a_taxonomy_file_inside_the_bundle(tmp_path):
    from models_support import manifest

    m = validate_manifest(manifest("tsn", "clip-linear", classes=TSN))
    assert m["classes"] == TSN
    assert from_manifest(m, tmp_path) == Taxonomy.from_names(TSN)
    _write(tmp_path, {"classes": [{"name": n, "display": n.upper()} for n in TSN]})
    m["taxonomy"] = "taxonomy.json"
    assert from_manifest(m, tmp_path).display("tumor") == "TUMOR"
    m["classes"] = ["stroma", "tumor", "normal"]
    with pytest.raises(ModelError, match="not the manifest's"):
        from_manifest(m, tmp_path)
    m["classes"], m["taxonomy"] = TSN, "../taxonomy.json"
    with pytest.raises(ModelError, match="outside the bundle"):
        from_manifest(m, tmp_path / "sub")
