"""Zero-shot prompt sets: editable JSON files, or prompts embedded in a manifest.

A prompt set is ``{"templates": ["an H&E stained image of {}.", ...],
"classes": {"ductal_carcinoma": ["ductal carcinoma of the breast", ...], ...}}``.
Each class's texts are every template filled with every phrase (a set with no templates uses
the phrases as whole sentences). Sets are found by name in the user's prompts folder
(``<user data>/prompts/NAME.json``, so a user copy overrides) and then resources/prompts/;
a name ending in .json or holding a slash is a path (relative to the bundle folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import safe_json
from pvdesk.errors import ModelError
from pvdesk.paths import resources_dir, user_data_dir
from pvdesk.taxonomy import normalise_name

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle


def prompt_dirs() -> list[Path]:
    return [user_data_dir() / "prompts", resources_dir() / "prompts"]


def list_prompt_sets() -> list[str]:
    names: list[str] = []
    for d in prompt_dirs():
        if d.is_dir():
            names += [p.stem for p in sorted(d.glob("*.json")) if p.stem not in names]
    return names


def find_prompt_file(spec: str, bundle: Bundle | None = None) -> Path:
    if spec.endswith(".json") or "/" in spec or "\\" in spec:
        p = Path(spec).expanduser()
        if not p.is_absolute() and bundle is not None and bundle.path is not None:
            from pvdesk.models.bundle_files import inside

            p = bundle.path / p
            if not inside(bundle.path, p):
                raise ModelError(f"{_where(bundle)}: field 'prompts': {spec[:200]!r} leads "
                                 "outside the bundle folder")
        if p.is_file():
            return p
        raise ModelError(f"{_where(bundle)}: field 'prompts': prompt file {p} not found")
    for d in prompt_dirs():
        p = d / f"{spec}.json"
        if p.is_file():
            return p
    raise ModelError(f"{_where(bundle)}: field 'prompts': no prompt set named {spec!r} "
                     f"(known: {', '.join(list_prompt_sets()) or 'none'})")


def _where(bundle: Bundle | None) -> str:
    return bundle.where if bundle is not None else "prompts"


def load_prompt_set(spec, bundle: Bundle | None = None) -> tuple[dict, str]:
    """(the prompt set object, where it came from)."""
    if isinstance(spec, dict):
        return spec, f"{_where(bundle)} (embedded prompts)"
    path = find_prompt_file(str(spec), bundle)
    try:
        obj = safe_json.load_file(path, 1 << 20)
    except (OSError, safe_json.JSONProblem) as exc:
        raise ModelError(f"{path}: cannot read the prompt set ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("classes"), dict):
        raise ModelError(f"{path}: field 'classes': a prompt set needs a 'classes' object "
                         "mapping class names to phrases")
    return obj, str(path)


# A custom class without phrases in the bundle's prompt set (or a bundle with none) is
# described by its display name (pvdesk.taxonomy) in these templates.
DEFAULT_TEMPLATES = ("an H&E image of {display}.",
                     "an H&E stained histopathology image of {display}.")


def default_texts(display: str) -> list[str]:
    return [t.format(display=display) for t in DEFAULT_TEMPLATES]


def class_texts(bundle: Bundle, spec=None) -> dict[str, list[str]]:
    """The prompt texts for every class of ``bundle``, in bundle.classes order. A custom
    taxonomy's class the prompt set does not name gets DEFAULT_TEMPLATES with its display
    name; a BreakHis class must be named."""
    spec = bundle.manifest.get("prompts") if spec is None else spec
    tax = getattr(bundle, "taxonomy", None)
    custom = tax is not None and not tax.is_breakhis
    if spec is None and custom:
        return {c: default_texts(tax.display(c)) for c in bundle.classes}
    obj, origin = load_prompt_set(spec, bundle)
    templates = obj.get("templates") or ["{}"]
    if not isinstance(templates, list) or not all(isinstance(t, str) and "{}" in t
                                                  for t in templates):
        raise ModelError(f"{origin}: field 'templates': must be a list of strings each "
                         "holding '{}' where the class phrase goes")
    phrases: dict[str, list[str]] = {}
    for key, val in obj["classes"].items():
        try:  # the bundle's own taxonomy (BreakHis names and aliases, or custom classes)
            name = tax.normalise(key) if tax is not None else normalise_name(key)
        except KeyError:
            raise ModelError(f"{origin}: field 'classes.{key}': unknown class name") from None
        vals = [val] if isinstance(val, str) else val
        if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
            raise ModelError(f"{origin}: field 'classes.{key}': must be a non-empty list of "
                             "phrases")
        phrases[name] = vals
    out = {}
    for c in bundle.classes:
        if c not in phrases and custom:
            out[c] = default_texts(tax.display(c))
            continue
        if c not in phrases:
            raise ModelError(f"{origin}: field 'classes': no prompts for class {c!r}")
        out[c] = [t.replace("{}", p) for t in templates for p in phrases[c]]
    return out
