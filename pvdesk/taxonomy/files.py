"""Taxonomy files and a bundle's taxonomy.

A taxonomy file is JSON::

    {"name": "tumour-stroma",
     "classes": [{"name": "tumor", "display": "Tumour", "colour": "#e69f00", "key": "1",
                  "group": "malignant"}, ...],
     "groups": {"malignant": "#e69f00", "benign": "#0072b2"}}

``name`` is a lowercase identifier (``[a-z][a-z0-9_]{0,63}``); ``display``, ``colour``
(``#rrggbb``), ``key`` ("1"-"9"), ``code`` (a short tag) and ``group`` are optional (a name's
display form, the checked palette, the next free key, the first letters, no group). If one
class has a group every class needs one. A file holds 2 to 9 classes, one review key each;
a model with more classes lists them in its manifest and is reviewed by menu and queue.
Every problem is a ModelError of one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from pvdesk import safe_json
from pvdesk.errors import ModelError
from pvdesk.taxonomy.breakhis import GROUP_COLOURS, REVIEW_EXTRA_LABELS, Subtype
from pvdesk.taxonomy.model import (
    BREAKHIS,
    COLOUR_RE,
    GROUP_PALETTE,
    KEYS,
    NAME_RE,
    Taxonomy,
    class_colour,
    display_of,
    short_code,
)

MAX_FILE_BYTES = 256 * 1024
MAX_FILE_CLASSES = len(KEYS)
_FIELDS = {"name", "display", "colour", "color", "key", "group", "code"}


def load_taxonomy_file(path) -> Taxonomy:
    """Read and validate a taxonomy JSON file (at most 256 KiB)."""
    p = Path(path)
    try:
        raw = safe_json.load_file(p, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise ModelError(f"{p}: taxonomy file not found") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot read the taxonomy file ({exc.strerror or exc})") from None
    except safe_json.JSONProblem as exc:
        raise ModelError(f"{p}: not a usable taxonomy file ({exc})") from None
    return parse_taxonomy(raw, str(p))


def _text(v, where: str, field: str, limit: int = 100) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > limit or not v.isprintable():
        raise ModelError(f"{where}: field '{field}': must be printable text of 1 to {limit} "
                         f"characters, got {str(v)[:40]!r}")
    return v.strip()


def _ident(v, where: str, field: str) -> str:
    if not isinstance(v, str) or not NAME_RE.fullmatch(v):
        raise ModelError(f"{where}: field '{field}': {str(v)[:40]!r} is not a lowercase name "
                         "(a letter, then letters, digits or _; at most 64)")
    return v


def _colour(v, where: str, field: str) -> str:
    if not isinstance(v, str) or not COLOUR_RE.fullmatch(v):
        raise ModelError(f"{where}: field '{field}': {str(v)[:40]!r} is not a colour "
                         "written #rrggbb")
    return v.lower()


def parse_taxonomy(raw, where: str) -> Taxonomy:
    """Validate a taxonomy file's parsed JSON (``where`` names it in errors)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("classes"), list):
        raise ModelError(f"{where}: a taxonomy file is a JSON object with a 'classes' list")
    entries = raw["classes"]
    if not 2 <= len(entries) <= MAX_FILE_CLASSES:
        raise ModelError(f"{where}: field 'classes': {len(entries)} classes; a taxonomy file "
                         f"holds 2 to {MAX_FILE_CLASSES} (one review key each); list more "
                         "classes in the manifest's 'classes' and review them by menu")
    tname = raw.get("name", "custom")
    tname = _text(tname, where, "name", 64)
    if tname == BREAKHIS:
        raise ModelError(f"{where}: field 'name': 'breakhis' is the built-in taxonomy's name")
    names, keys, rows = [], {}, []
    for i, e in enumerate(entries):
        f = f"classes[{i}]"
        if not isinstance(e, dict):
            raise ModelError(f"{where}: field '{f}': must be an object with a 'name'")
        extra = set(e) - _FIELDS
        if extra:
            raise ModelError(f"{where}: field '{f}': unknown field {sorted(extra)[0]!r} "
                             f"(expected {', '.join(sorted(_FIELDS - {'color'}))})")
        n = _ident(e.get("name"), where, f"{f}.name")
        if n in REVIEW_EXTRA_LABELS:
            raise ModelError(f"{where}: field '{f}.name': {n!r} is a review-only label")
        if n in names:
            raise ModelError(f"{where}: field '{f}.name': class {n!r} is listed twice")
        names.append(n)
        key = e.get("key")
        if key is not None:
            if not isinstance(key, (str, int)) or isinstance(key, bool) or str(key) not in KEYS:
                raise ModelError(f"{where}: field '{f}.key': {str(key)[:20]!r} is not a key "
                                 "from 1 to 9 (0 and U are the review-only labels')")
            key = str(key)
            if key in keys:
                raise ModelError(f"{where}: field '{f}.key': key {key} is already "
                                 f"{keys[key]!r}'s")
            keys[key] = n
        colour = e.get("colour", e.get("color"))
        rows.append((n, _text(e["display"], where, f"{f}.display") if "display" in e
                     else display_of(n),
                     _text(e["code"], where, f"{f}.code", 12) if "code" in e else None,
                     _ident(e["group"], where, f"{f}.group") if "group" in e else "",
                     _colour(colour, where, f"{f}.colour") if colour is not None
                     else class_colour(i), key))
    grouped = [bool(r[3]) for r in rows]
    if any(grouped) and not all(grouped):
        raise ModelError(f"{where}: field 'classes': some classes have a group and some not "
                         "(give every class a group, or none)")
    free = [k for k in KEYS if k not in keys]
    subs = []
    for n, display, code, group, colour, key in rows:
        if key is None:
            key = free.pop(0)
        subs.append(Subtype(n, display, code or short_code(n, names), group, colour, key))
    return Taxonomy(tname, tuple(subs), _groups(raw.get("groups"), subs, where))


def _groups(raw, subs, where: str) -> tuple[tuple[str, str], ...]:
    used = list(dict.fromkeys(s.group for s in subs if s.group))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: field 'groups': must be an object of group name to colour")
    unknown = set(raw) - set(used)
    if unknown:
        raise ModelError(f"{where}: field 'groups': group {sorted(unknown)[0]!r} has no class")
    if used and len(used) < 2:
        raise ModelError(f"{where}: field 'classes': a single group {used[0]!r} rolls up "
                         "nothing (use two or more groups, or none)")
    out = []
    for i, g in enumerate(used):
        col = raw.get(g)
        out.append((g, _colour(col, where, f"groups.{g}") if col is not None
                    else GROUP_COLOURS.get(g, GROUP_PALETTE[i % len(GROUP_PALETTE)])))
    return tuple(out)


def from_manifest(manifest: dict, bundle_dir) -> Taxonomy:
    """A bundle's taxonomy: its ``taxonomy`` file (inside the bundle folder; its classes must
    be the manifest's, in the same order), else BreakHis when every class is a BreakHis name,
    else display names, keys and colours made from the class names."""
    classes = [str(c) for c in manifest.get("classes") or ()]
    spec = manifest.get("taxonomy")
    if spec is None:
        return Taxonomy.for_classes(classes)
    where = f"{bundle_dir}/manifest.json" if bundle_dir is not None else "manifest"
    if not isinstance(spec, str) or not spec.strip() or len(spec) > 1024 or "\x00" in spec:
        raise ModelError(f"{where}: field 'taxonomy': must be the name of a JSON file in the "
                         "bundle folder")
    if bundle_dir is None:
        raise ModelError(f"{where}: field 'taxonomy': a bundle without a folder cannot name a "
                         "taxonomy file")
    from pvdesk.models.bundle_files import inside

    base = Path(bundle_dir)
    path = base / spec
    if Path(spec).is_absolute() or not inside(base, path):
        raise ModelError(f"{where}: field 'taxonomy': {spec[:200]!r} leads outside the bundle "
                         "folder")
    tax = load_taxonomy_file(path)
    if list(tax.names) != classes:
        raise ModelError(f"{path}: its classes ({', '.join(tax.names)}) are not the manifest's "
                         f"({', '.join(classes)}) in the same order")
    return tax
