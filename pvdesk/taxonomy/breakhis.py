"""The built-in BreakHis taxonomy: 8 subtypes with names, labels, codes, groups, colours and
keys, the benign/malignant groups, and the review-only labels every taxonomy shares."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subtype:
    name: str  # machine name, used in CSV columns (p_<name>) and folder names
    label: str  # human label
    code: str  # BreakHis code (a short tag for custom classes)
    group: str  # "benign" or "malignant" ("" when the taxonomy has no groups)
    colour: str  # hex RGB used in heatmaps, legends and GeoJSON
    key: str  # review shortcut key ("" past the ninth class of a custom taxonomy)


# Colours: told apart by readers with any common colour-vision deficiency (deutan, protan,
# tritan) and kept away from eosin pink and haematoxylin purple, so a tinted tile still reads
# as tissue (tests/test_palette.py checks both in CIELAB). Benign classes are cool (greens,
# blues), malignant ones warm or dark (orange, chartreuse, olive, black).
SUBTYPES: tuple[Subtype, ...] = (
    Subtype("adenosis", "Adenosis", "A", "benign", "#009e73", "1"),
    Subtype("fibroadenoma", "Fibroadenoma", "F", "benign", "#66ccee", "2"),
    Subtype("tubular_adenoma", "Tubular adenoma", "TA", "benign", "#006400", "3"),
    Subtype("phyllodes_tumor", "Phyllodes tumor", "PT", "benign", "#0072b2", "4"),
    Subtype("ductal_carcinoma", "Ductal carcinoma", "DC", "malignant", "#e69f00", "5"),
    Subtype("lobular_carcinoma", "Lobular carcinoma", "LC", "malignant", "#7fff00", "6"),
    Subtype("mucinous_carcinoma", "Mucinous carcinoma", "MC", "malignant", "#999933", "7"),
    Subtype("papillary_carcinoma", "Papillary carcinoma", "PC", "malignant", "#000000", "8"),
)

CLASS_NAMES: tuple[str, ...] = tuple(s.name for s in SUBTYPES)
GROUPS: tuple[str, ...] = ("benign", "malignant")
GROUP_COLOURS = {"benign": "#0072b2", "malignant": "#e69f00"}

# Review-only labels (never predicted by a model), in every taxonomy.
NON_TISSUE = "non_tissue"
UNCERTAIN = "uncertain"
REVIEW_EXTRA_LABELS = {NON_TISSUE: ("Non-tissue / artefact", "0", "#777777"),
                       UNCERTAIN: ("Uncertain", "U", "#ffffff")}

_BY_NAME = {s.name: s for s in SUBTYPES}
_BY_CODE = {s.code: s for s in SUBTYPES}
_ALIASES = {
    "phyllodes_tumour": "phyllodes_tumor",
    "tubular adenoma": "tubular_adenoma",
}


def normalise_name(text: str) -> str:
    """Map a free-form class name ("Ductal carcinoma", "DC", "ductal-carcinoma") to its name.

    Raises KeyError when the text names no class.
    """
    raw = text.strip()
    if raw.upper() in _BY_CODE:
        return _BY_CODE[raw.upper()].name
    key = raw.lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key in _BY_NAME or key in GROUPS:
        return key
    raise KeyError(f"unknown class {text!r}")


def subtype(name: str) -> Subtype:
    return _BY_NAME[normalise_name(name)]


def by_code(code: str) -> Subtype:
    return _BY_CODE[code.upper()]
