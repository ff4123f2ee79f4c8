"""The one source of truth for class names, order, colours and keys.

Everything that shows, stores or trains a class label goes through a :class:`Taxonomy`:
``Taxonomy.breakhis()`` (the built-in, the module constants below) or a custom one from a
bundle's manifest or taxonomy file (:func:`from_manifest`, :func:`load_taxonomy_file`), which
a run keeps in its settings (``Taxonomy.of_run``). The module-level constants and functions
are the BreakHis defaults.
"""

from __future__ import annotations

from pvdesk.taxonomy.breakhis import (
    CLASS_NAMES,
    GROUP_COLOURS,
    GROUPS,
    NON_TISSUE,
    REVIEW_EXTRA_LABELS,
    SUBTYPES,
    UNCERTAIN,
    Subtype,
    by_code,
    normalise_name,
    subtype,
)
from pvdesk.taxonomy.files import (
    MAX_FILE_CLASSES,
    from_manifest,
    load_taxonomy_file,
    parse_taxonomy,
)
from pvdesk.taxonomy.model import CUSTOM_PALETTE, NAME_RE, Taxonomy

__all__ = [
    "CLASS_NAMES", "CUSTOM_PALETTE", "GROUPS", "GROUP_COLOURS", "MAX_FILE_CLASSES", "NAME_RE",
    "NON_TISSUE", "REVIEW_EXTRA_LABELS", "SUBTYPES", "UNCERTAIN", "Subtype", "Taxonomy",
    "by_code", "colour_of", "from_manifest", "group_of", "hex_to_rgb", "label_for_key",
    "label_parts", "load_taxonomy_file", "normalise_name", "parse_taxonomy", "rollup",
    "subtype", "taxonomy_of", "union_order",
]

BREAKHIS = Taxonomy.breakhis()


def taxonomy_of(bundle) -> Taxonomy:
    """A bundle's taxonomy (``bundle.taxonomy``; from its classes for a stand-in without)."""
    tax = getattr(bundle, "taxonomy", None)
    return tax if isinstance(tax, Taxonomy) else Taxonomy.for_classes(bundle.classes)


def union_order(class_lists) -> list[str]:
    """Every class of several models once: BreakHis subtypes and groups in their order, then
    any other class in the order the models list them."""
    present = list(dict.fromkeys(c for classes in class_lists for c in classes))
    known = [c for c in (*CLASS_NAMES, *GROUPS) if c in present]
    return known + [c for c in present if c not in known]


def group_of(name: str) -> str:
    """benign/malignant for a BreakHis subtype name; a group name maps to itself."""
    return BREAKHIS.group_of(name)  # type: ignore[return-value]


def colour_of(name: str) -> str:
    return BREAKHIS.colour_of(name)


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def label_parts(name: str) -> tuple[str, str, str]:
    """(shortcut key, human label, short tag) of a BreakHis subtype ("5", "Ductal carcinoma",
    "DC") or a review-only label ("0", "Non-tissue / artefact", "non-tissue")."""
    return BREAKHIS.label_parts(name)


def label_for_key(key: str) -> str | None:
    """The BreakHis review label a shortcut key assigns, or None."""
    return BREAKHIS.label_for_key(key)


def rollup(classes, probs):
    """Sum per-class probabilities into benign/malignant: shape (..., 2) in GROUPS order."""
    return BREAKHIS.rollup(classes, probs)
