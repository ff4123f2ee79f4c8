"""The one source of truth for class names, order, colours, keys and BreakHis codes.

Everything that shows, stores or trains a class label goes through this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subtype:
    name: str  # machine name, used in CSV columns (p_<name>) and folder names
    label: str  # human label
    code: str  # BreakHis code
    group: str  # "benign" or "malignant"
    colour: str  # hex RGB used in heatmaps, legends and GeoJSON
    key: str  # review shortcut key


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

# Review-only labels (never predicted by a model).
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


def group_of(name: str) -> str:
    """benign/malignant for a subtype name; a group name maps to itself."""
    n = normalise_name(name)
    return n if n in GROUPS else _BY_NAME[n].group


def colour_of(name: str) -> str:
    if name in REVIEW_EXTRA_LABELS:
        return REVIEW_EXTRA_LABELS[name][2]
    n = normalise_name(name)
    return GROUP_COLOURS[n] if n in GROUPS else _BY_NAME[n].colour


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def label_parts(name: str) -> tuple[str, str, str]:
    """(shortcut key, human label, short tag) of a subtype ("5", "Ductal carcinoma", "DC") or
    a review-only label ("0", "Non-tissue / artefact", "non-tissue"). KeyError otherwise."""
    if name in REVIEW_EXTRA_LABELS:
        text, key, _ = REVIEW_EXTRA_LABELS[name]
        return key, text, text.split(" /")[0].lower()
    s = subtype(name)
    return s.key, s.label, s.code


def label_for_key(key: str) -> str | None:
    """The review label a shortcut key assigns, or None."""
    for s in SUBTYPES:
        if s.key == key:
            return s.name
    for name, (_, k, _) in REVIEW_EXTRA_LABELS.items():
        if k.lower() == key.lower():
            return name
    return None


def rollup(classes, probs):
    """Sum per-class probabilities into benign/malignant.

    ``classes`` is a model's class list (subtypes, or the two groups for a binary model);
    ``probs`` is an array of shape (..., len(classes)). Returns shape (..., 2) in GROUPS order.
    """
    import numpy as np

    p = np.asarray(probs, dtype=np.float64)
    out = np.zeros(p.shape[:-1] + (2,), dtype=np.float64)
    for i, c in enumerate(classes):
        out[..., GROUPS.index(group_of(c))] += p[..., i]
    return out
