"""Any taxonomy: the Taxonomy value, taxonomy files, a bundle's classes and taxonomy file,
prompts, a retrained bundle's and a review export's classes, a stored taxonomy that is unusable.
End to end in tests/test_taxonomy_flow.py; the views in tests/test_taxonomy_display.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from taxonomy_support import TSN, write_taxonomy_json

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


def test_a_taxonomy_file_with_groups(tmp_path):
    p = write_taxonomy_json(tmp_path, {"name": "tsn", "classes": [
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
    p = write_taxonomy_json(tmp_path, obj)
    with pytest.raises(ModelError) as err:
        load_taxonomy_file(p)
    msg = str(err.value)
    assert msg.startswith(str(p) + ": ") and words in msg and "\n" not in msg, msg


def test_manifest_takes_custom_classes_and_a_taxonomy_file_inside_the_bundle(tmp_path):
    from models_support import manifest

    m = validate_manifest(manifest("tsn", "clip-linear", classes=TSN))
    assert m["classes"] == TSN
    assert from_manifest(m, tmp_path) == Taxonomy.from_names(TSN)
    write_taxonomy_json(tmp_path, {"classes": [{"name": n, "display": n.upper()} for n in TSN]})
    m["taxonomy"] = "taxonomy.json"
    assert from_manifest(m, tmp_path).display("tumor") == "TUMOR"
    m["classes"] = ["stroma", "tumor", "normal"]
    with pytest.raises(ModelError, match="not the manifest's"):
        from_manifest(m, tmp_path)
    m["classes"], m["taxonomy"] = TSN, "../taxonomy.json"
    with pytest.raises(ModelError, match="outside the bundle"):
        from_manifest(m, tmp_path / "sub")


def test_zero_shot_custom_classes_use_their_display_names_unless_a_prompt_file_says(tmp_path):
    from models_support import manifest

    from pvdesk.models import Bundle
    from pvdesk.models.prompts import class_texts

    b = Bundle(manifest("z", "clip-zeroshot", classes=TSN))
    texts = class_texts(b)
    assert list(texts) == TSN and texts["stroma"][0] == "an H&E image of Stroma."
    folder = tmp_path / "z"
    folder.mkdir()
    (folder / "taxonomy.json").write_text(json.dumps({"classes": [
        {"name": "tumor", "display": "invasive tumour"}, {"name": "stroma"},
        {"name": "normal"}]}))
    (folder / "prompts.json").write_text(json.dumps({"templates": ["a slide of {}."],
                                                     "classes": {"normal": ["normal ducts"]}}))
    b = Bundle(manifest("z", "clip-zeroshot", classes=TSN, taxonomy="taxonomy.json",
                        prompts="prompts.json"), folder)
    texts = class_texts(b)
    assert texts["normal"] == ["a slide of normal ducts."]
    assert texts["tumor"][0] == "an H&E image of invasive tumour."
    with pytest.raises(ModelError, match="field 'prompts'"):  # BreakHis still needs them
        Bundle(manifest("z", "clip-zeroshot"))


def test_a_bundle_with_a_bad_taxonomy_file_is_refused_naming_the_file(tmp_path):
    from models_support import linear_tensors, manifest

    from pvdesk.models import resolve_bundle, write_bundle

    folder = tmp_path / "b"
    write_bundle(folder, manifest("b", "clip-linear", classes=TSN), linear_tensors(3))
    m = json.loads((folder / "manifest.json").read_text())
    m["taxonomy"] = "taxonomy.json"
    (folder / "manifest.json").write_text(json.dumps(m))
    (folder / "taxonomy.json").write_text(json.dumps({"classes": [
        {"name": "tumor", "key": "1"}, {"name": "stroma", "key": "1"}, {"name": "normal"}]}))
    with pytest.raises(ModelError) as err:
        resolve_bundle(str(folder))
    assert str(err.value).startswith(str(folder / "taxonomy.json") + ": field 'classes[1].key'")


def test_a_retrained_bundle_keeps_the_starting_taxonomy(tmp_path):
    from training.taxonomy_carry import ordered, write_taxonomy

    p = write_taxonomy_json(tmp_path, {"name": "tsn", "classes": [
        {"name": "tumor", "display": "Tumour", "group": "malignant"},
        {"name": "stroma", "group": "benign"}, {"name": "normal", "group": "benign"}]})
    tax = load_taxonomy_file(p)
    assert ordered(["normal", "stroma", "tumor"], tax) == TSN
    assert ordered(["normal", "tumor"], None) == ["normal", "tumor"]
    out = tmp_path / "new"
    assert write_taxonomy(out, tax, TSN) == "taxonomy.json"
    again = load_taxonomy_file(out / "taxonomy.json")
    assert again == tax
    assert write_taxonomy(out, tax, ["tumor", "stroma"]) == "taxonomy.json"
    two = load_taxonomy_file(out / "taxonomy.json")
    assert two.names == ("tumor", "stroma") and two.groups == ("malignant", "benign")
    # both left in one group: nothing to roll up, so the file has no groups
    assert write_taxonomy(out, tax, ["stroma", "normal"]) == "taxonomy.json"
    benign = load_taxonomy_file(out / "taxonomy.json")
    assert benign.names == ("stroma", "normal") and not benign.has_groups
    plain = Taxonomy.from_names(TSN)
    assert write_taxonomy(tmp_path / "plain", plain, TSN) is None  # nothing beyond names


def test_a_review_export_of_custom_classes_trains_in_its_own_class_order(tmp_path):
    from training_fixtures import colour_slide, review_rows

    from pvdesk.export.csv import write_rows_csv
    from training.data.review_csv import load_review_csv
    from training.errors import DataError

    slide, tiles = colour_slide(tmp_path / "s.tif", classes=3, per_class=2)
    names = {"adenosis": "tumor", "fibroadenoma": "stroma", "tubular_adenoma": "normal"}
    rows = [dict(r, probs=[1 / 3] * 3, review_label=names[r["review_label"]])
            for r in review_rows(slide, tiles)]
    path = tmp_path / "e.csv"
    write_rows_csv(path, TSN, rows)
    ds = load_review_csv(path)
    assert ds.classes == TSN  # the file's order, not sorted
    assert ds.with_samples(ds.samples[:4]).classes == [c for c in TSN
                                                       if c in {s.label for s in ds.samples[:4]}]
    write_rows_csv(path, TSN, [dict(rows[0], review_label="adenosis")])
    with pytest.raises(DataError, match="unknown label 'adenosis'.*tumor, stroma, normal"):
        load_review_csv(path)


def test_a_hostile_stored_taxonomy_falls_back_to_the_class_names(capsys):
    from types import SimpleNamespace

    tax = Taxonomy.from_names(TSN)
    stored = tax.to_dict()
    stored["classes"][0]["colour"] = "url(javascript:1)"
    run = SimpleNamespace(run_id=7, classes=TSN, settings={"taxonomy": stored})
    assert Taxonomy.of_run(run) == tax
    assert "run 7: stored taxonomy unusable" in capsys.readouterr().err
    assert Taxonomy.of_run(run) is Taxonomy.of_run(run)  # parsed once per run object
    assert capsys.readouterr().err == ""  # and reported once, not at every correction
    for bad in ({"classes": "x"}, {"classes": [{"name": "a"}]},
                {"classes": [dict(c, key="7") for c in tax.to_dict()["classes"]]}):
        run = SimpleNamespace(run_id=8, classes=TSN, settings={"taxonomy": bad})
        assert Taxonomy.of_run(run) == tax
