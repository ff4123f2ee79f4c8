"""A retrained bundle keeps its starting bundle's taxonomy.

When the backbone is a bundle with a custom taxonomy (pvdesk.taxonomy), the new bundle's
classes follow that taxonomy's order (so review keys 1-9 keep their meaning) and, when the
taxonomy carries more than the class names (display names, colours, keys, groups), it is
written as the new bundle's ``taxonomy.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pvdesk.errors import PvdeskError
from pvdesk.export.atomic import atomic_write
from pvdesk.taxonomy import MAX_FILE_CLASSES, Taxonomy

TAXONOMY_FILE = "taxonomy.json"


def start_taxonomy(spec: str | None) -> Taxonomy | None:
    """The custom taxonomy of the starting bundle ``spec`` (None for BreakHis, for a spec
    that is not a bundle, e.g. an open_clip tag, or one that does not resolve: the backbone
    step reports that one itself)."""
    if not spec:
        return None
    from pvdesk.models import resolve_bundle

    try:
        tax = resolve_bundle(spec).taxonomy
    except PvdeskError:
        return None
    return None if tax.is_breakhis else tax


def ordered(classes: list[str], tax: Taxonomy | None) -> list[str]:
    """``classes`` in the taxonomy's order (classes it does not know keep theirs, last)."""
    if tax is None:
        return list(classes)
    known = [c for c in tax.names if c in classes]
    return known + [c for c in classes if c not in known]


def write_taxonomy(out: Path, tax: Taxonomy | None, classes: list[str]) -> str | None:
    """Write ``taxonomy.json`` for ``classes`` into ``out`` when the starting taxonomy holds
    them all and says more than their names; returns the file name for the manifest."""
    if tax is None or not set(classes) <= set(tax.names) or len(classes) > MAX_FILE_CLASSES:
        return None
    if Taxonomy.from_names(classes) == Taxonomy(tax.name, tuple(
            s for s in tax.classes if s.name in classes)):
        return None  # nothing beyond the names
    d = tax.to_dict()
    d["classes"] = [c for c in d["classes"] if c["name"] in classes]
    used = {c.get("group") for c in d["classes"]} - {None}
    if "groups" in d:
        d["groups"] = {g: col for g, col in d["groups"].items() if g in used}
        if len(used) < 2:  # one group left rolls up nothing
            d.pop("groups")
            for c in d["classes"]:
                c.pop("group", None)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / TAXONOMY_FILE) as fh:
        json.dump(d, fh, indent=1)
    return TAXONOMY_FILE
