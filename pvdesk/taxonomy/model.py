"""``Taxonomy``: a model's classes (name, display name, colour, review key, optional group),
their groups and the review-only labels (0 non-tissue, U uncertain), as one value.

BreakHis (``Taxonomy.breakhis()``) is the built-in; a custom taxonomy comes from class names
(``Taxonomy.from_names``), a taxonomy file (pvdesk.taxonomy.files) or a bundle's manifest.
A run stores its taxonomy (``to_dict``) in its settings so the run can be reviewed and
exported without its bundle (``of_run``).
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass
from functools import cached_property

from pvdesk.taxonomy.breakhis import (
    GROUP_COLOURS,
    GROUPS,
    NON_TISSUE,
    REVIEW_EXTRA_LABELS,
    SUBTYPES,
    UNCERTAIN,
    Subtype,
    normalise_name,
)

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
COLOUR_RE = re.compile(r"#[0-9a-fA-F]{6}")
KEYS = tuple("123456789")
MAX_KEYED = len(KEYS)
BREAKHIS = "breakhis"

# Colours for custom classes, in the order classes take them. Every prefix of this list, with
# the review-only colours, passes tests/test_palette.py's CIELAB checks (ΔE >= 10 between any
# two in normal, deutan, protan and tritan vision; >= 10 from eosin and haematoxylin tones).
CUSTOM_PALETTE: tuple[str, ...] = (
    "#e69f00", "#0072b2", "#009e73", "#000000", "#66ccee", "#772233", "#7fff00", "#999933",
    "#006400",
)
# Group colours for custom groups (benign/malignant keep theirs), in order of first use.
GROUP_PALETTE: tuple[str, ...] = ("#0072b2", "#e69f00", "#009e73", "#000000", "#66ccee")


def extra_colour(i: int) -> str:
    """A colour for the (i+1)-th class past the checked palette: a golden-angle hue walk.
    These are not checked for colour-vision deficiencies (nor can 10+ colours all be)."""
    h = (0.11 + i * 0.381966) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.55 + 0.35 * ((i // 3) % 2))
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def class_colour(i: int) -> str:
    return CUSTOM_PALETTE[i] if i < len(CUSTOM_PALETTE) else extra_colour(i - len(CUSTOM_PALETTE))


def display_of(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or name


def _norm(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True)
class Taxonomy:
    """Ordered classes (``Subtype``: name, label, code, group, colour, key), ordered groups
    with colours (empty: no groups, no roll-up) and the review-only extras."""

    name: str
    classes: tuple[Subtype, ...]
    group_colours: tuple[tuple[str, str], ...] = ()

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def breakhis(cls) -> Taxonomy:
        return _BREAKHIS

    @classmethod
    def from_names(cls, names, name: str = "custom") -> Taxonomy:
        """Display names from the names, keys 1-9 in order (none past 9), colours from
        CUSTOM_PALETTE (then a hue walk), no groups."""
        names = [str(n) for n in names]
        if all(_is_breakhis(n) for n in names):
            return _BREAKHIS
        subs = tuple(Subtype(n, display_of(n), short_code(n, names), "", class_colour(i),
                             KEYS[i] if i < MAX_KEYED else "") for i, n in enumerate(names))
        return cls(name, subs)

    @classmethod
    def for_classes(cls, classes) -> Taxonomy:
        """BreakHis when every class is a BreakHis subtype or group, else from_names."""
        return cls.from_names(classes)

    @classmethod
    def of_run(cls, run) -> Taxonomy:
        """A stored run's taxonomy: its settings' ``taxonomy``, else from its classes.
        Kept on the run object (a run never changes), so a store's cached runs parse it,
        and report an unusable one, once."""
        memo = getattr(run, "__dict__", None)
        if memo is not None and "_taxonomy" in memo:
            return memo["_taxonomy"]
        tax = None
        raw = (getattr(run, "settings", None) or {}).get("taxonomy")
        if isinstance(raw, dict):
            try:
                tax = cls.from_dict(raw)
            except ValueError as exc:
                import sys

                print(f"pvdesk: run {getattr(run, 'run_id', '?')}: stored taxonomy unusable "
                      f"({exc}); using its class names", file=sys.stderr)
        tax = tax or cls.for_classes(run.classes)
        if memo is not None:
            memo["_taxonomy"] = tax
        return tax

    @classmethod
    def from_dict(cls, d: dict) -> Taxonomy:
        """Inverse of to_dict (trusted input: what pvdesk stored). ValueError if malformed."""
        if d.get("name") == BREAKHIS:
            return _BREAKHIS
        try:
            subs = tuple(Subtype(str(c["name"]), str(c["display"]), str(c.get("code") or
                                 c["name"]), str(c.get("group") or ""), str(c["colour"]),
                                 str(c.get("key") or "")) for c in d["classes"])
            groups = tuple((str(g), str(col)) for g, col in (d.get("groups") or {}).items())
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed taxonomy ({exc!r})") from None
        names = [s.name for s in subs]
        bad = next((x for x in (*(s.colour for s in subs), *(c for _, c in groups))
                    if not COLOUR_RE.fullmatch(x)), None)
        if (len(names) < 2 or len(set(names)) != len(names)
                or not all(NAME_RE.fullmatch(n) for n in names)):
            raise ValueError("malformed taxonomy (class names)")
        if bad is not None:
            raise ValueError(f"malformed taxonomy (colour {bad[:20]!r})")
        keys = [s.key for s in subs if s.key]
        if len(set(keys)) != len(keys) or not set(keys) <= set(KEYS):
            raise ValueError("malformed taxonomy (keys)")
        if {s.group for s in subs if s.group} - {g for g, _ in groups}:
            raise ValueError("malformed taxonomy (a group without a colour)")
        return cls(str(d.get("name") or "custom"), subs, groups)

    def to_dict(self) -> dict:
        if self.is_breakhis:
            return {"name": BREAKHIS}
        return {"name": self.name,
                "classes": [{"name": s.name, "display": s.label, "code": s.code,
                             "colour": s.colour, "key": s.key or None,
                             **({"group": s.group} if s.group else {})} for s in self.classes],
                **({"groups": dict(self.group_colours)} if self.group_colours else {})}

    # -- queries ------------------------------------------------------------------------
    @property
    def is_breakhis(self) -> bool:
        return self.name == BREAKHIS

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.classes)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g for g, _ in self.group_colours)

    @property
    def has_groups(self) -> bool:
        return bool(self.group_colours)

    @property
    def benign_malignant(self) -> bool:
        """True when the groups are BreakHis's benign/malignant (the slide call's rule)."""
        return set(self.groups) == set(GROUPS)

    @property
    def rollup_pair(self) -> tuple[str, str] | None:
        """The two groups the roll-up layer runs between (low, high): benign -> malignant,
        or a custom taxonomy's two groups in order; None without exactly two groups."""
        if self.benign_malignant:
            return GROUPS  # type: ignore[return-value]
        return self.groups if len(self.groups) == 2 else None  # type: ignore[return-value]

    @property
    def review_labels(self) -> tuple[str, ...]:
        return self.names + (NON_TISSUE, UNCERTAIN)

    @property
    def diagnosis_labels(self) -> tuple[str, ...]:
        return self.review_labels + self.groups

    @property
    def keyed(self) -> tuple[Subtype, ...]:
        return tuple(s for s in self.classes if s.key)

    def normalise(self, text: str) -> str:
        """A class or group name for free text ("Stroma", "TUMOR", BreakHis codes and aliases
        for BreakHis). KeyError when it names none."""
        if self.is_breakhis:
            return normalise_name(text)
        key = _norm(text)
        if key in self._by_name or key in self.groups:
            return key
        for s in self.classes:
            if text.strip().lower() in (s.label.lower(), s.code.lower()):
                return s.name
        raise KeyError(f"unknown class {text!r}")

    def entry(self, name: str) -> Subtype:
        return self._by_name[self.normalise(name)]

    def display(self, name: str) -> str:
        if name in REVIEW_EXTRA_LABELS:
            return REVIEW_EXTRA_LABELS[name][0]
        n = self.normalise(name)
        return n.capitalize() if n in self.groups else self._by_name[n].label

    def group_of(self, name: str) -> str | None:
        """A class's group (a group maps to itself); None when the taxonomy has none."""
        n = self.normalise(name)
        if n in self.groups:
            return n
        return self._by_name[n].group or None

    def colour_of(self, name: str) -> str:
        if name in REVIEW_EXTRA_LABELS:
            return REVIEW_EXTRA_LABELS[name][2]
        n = self.normalise(name)
        return dict(self.group_colours)[n] if n in self.groups else self._by_name[n].colour

    def label_parts(self, name: str) -> tuple[str, str, str]:
        """(shortcut key or "", human label, short tag). KeyError for an unknown name."""
        if name in REVIEW_EXTRA_LABELS:
            text, key, _ = REVIEW_EXTRA_LABELS[name]
            return key, text, text.split(" /")[0].lower()
        s = self.entry(name)
        return s.key, s.label, s.code

    def label_for_key(self, key: str) -> str | None:
        """The review label a shortcut key assigns (1-9 in class order, 0, U), or None."""
        for s in self.classes:
            if s.key and s.key == key:
                return s.name
        for name, (_, k, _) in REVIEW_EXTRA_LABELS.items():
            if k.lower() == key.lower():
                return name
        return None

    def covers(self, classes) -> bool:
        """True when every one of ``classes`` is a class or group of this taxonomy."""
        try:
            return all(self.normalise(c) == c for c in classes)
        except KeyError:
            return False

    def rollup(self, classes, probs):
        """Sum per-class probabilities into this taxonomy's groups: shape (..., n groups)."""
        import numpy as np

        p = np.asarray(probs, dtype=np.float64)
        out = np.zeros(p.shape[:-1] + (len(self.groups),), dtype=np.float64)
        for i, c in enumerate(classes):
            g = self.group_of(c)
            if g is not None:
                out[..., self.groups.index(g)] += p[..., i]
        return out

    @cached_property
    def _by_name(self) -> dict[str, Subtype]:
        return {s.name: s for s in self.classes}


def _is_breakhis(name: str) -> bool:
    try:
        normalise_name(name)
    except KeyError:
        return False
    return True


def short_code(name: str, names) -> str:
    """A short tag: the first three letters upper-cased, the whole name where that clashes."""
    short = name[:3].upper()
    return short if sum(n[:3].upper() == short for n in names) == 1 else name


_BREAKHIS = Taxonomy(BREAKHIS, SUBTYPES, tuple(GROUP_COLOURS.items()))
