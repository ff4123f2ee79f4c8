"""The bundle manifest: parse, validate and normalise ``manifest.json``. No torch here.

Every error is a ModelError naming the manifest file and the field that is wrong, one line:
``…/manifest.json: field 'kind': unknown kind 'foo' (expected one of …)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from pvdesk import safe_json
from pvdesk.errors import ModelError
from pvdesk.taxonomy import GROUPS, NAME_RE, REVIEW_EXTRA_LABELS, normalise_name
from pvdesk.tile_size import TILE_UM_RANGE

SCHEMA_VERSION = 1
KINDS = ("clip-zeroshot", "clip-linear", "clip-mlp", "resnet50")
CLIP_KINDS = ("clip-zeroshot", "clip-linear", "clip-mlp")
BACKBONE_SOURCES = ("open_clip", "hf-hub", "file", "torchvision", "bundle", "timm")
MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "weights.safetensors"

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_TILE_UM = 112.0


def _fail(where: str, field: str, problem: str) -> ModelError:
    return ModelError(f"{where}: field '{field}': {problem}")


def canonical_json(manifest: dict) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def manifest_hash(manifest: dict) -> str:
    """sha256 of the canonical (sorted keys, compact) JSON of a manifest."""
    return hashlib.sha256(canonical_json(manifest).encode("utf-8")).hexdigest()


MAX_MANIFEST_BYTES = 1 << 20


def read_manifest(path: Path) -> dict:
    """Read a manifest.json file (not yet validated): a regular file of at most 1 MiB of
    JSON without NaN/Infinity, huge numbers or deep nesting (pvdesk.safe_json)."""
    try:
        raw = safe_json.load_file(path, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ModelError(f"{path}: no manifest.json here (a bundle is a folder with one)") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    except safe_json.JSONProblem as exc:
        raise ModelError(f"{path}: not a usable manifest ({exc})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: the manifest must be a JSON object")
    return raw


def _classes(raw: Any, where: str) -> list[str]:
    """2 to 1000 distinct class names. When every name is a BreakHis subtype (or the two
    groups) they are normalised as before (codes, aliases: "DC" -> ductal_carcinoma);
    otherwise each must be a lowercase identifier ([a-z][a-z0-9_]{0,63}), a custom taxonomy."""
    if not isinstance(raw, list) or not 2 <= len(raw) <= 1000:
        raise _fail(where, "classes", "must be a list of at least 2 (and at most 1000) "
                    "class names")
    for c in raw:
        if not isinstance(c, str) or len(c) > 200:
            raise _fail(where, "classes", f"class names must be short strings, got "
                        f"{str(c)[:40]!r}")
    names = _breakhis_names(raw)
    if names is None:
        names = list(raw)
        for c in names:
            if not NAME_RE.fullmatch(c):
                raise _fail(where, "classes", f"{c[:40]!r} is neither a BreakHis class nor a "
                            "lowercase name (a letter, then letters, digits or _; at most 64)")
            if c in REVIEW_EXTRA_LABELS:
                raise _fail(where, "classes", f"{c!r} is a review-only label, not a class")
    if len(set(names)) != len(names):
        raise _fail(where, "classes", "a class is listed twice")
    groups = [n in GROUPS for n in names]
    if any(groups) and not all(groups):
        raise _fail(where, "classes", "mixes subtypes with benign/malignant")
    return names


def _breakhis_names(raw: list[str]) -> list[str] | None:
    """The BreakHis names of ``raw`` (codes and aliases resolved), or None if one is not."""
    try:
        return [normalise_name(c) for c in raw]
    except KeyError:
        return None


def _taxonomy_field(raw: Any, where: str) -> str:
    if (not isinstance(raw, str) or not raw.strip() or len(raw) > 1024 or "\x00" in raw
            or raw.startswith(("/", "\\")) or ".." in raw.replace("\\", "/").split("/")):
        raise _fail(where, "taxonomy", f"must name a JSON file inside the bundle folder, got "
                    f"{str(raw)[:60]!r}")
    return raw


def stated_mean_std(cfg: dict) -> dict:
    """{mean, std} as a model's own config states them (three numbers each; others left out),
    for a manifest."""
    out: dict = {}
    for key in ("mean", "std"):
        v = cfg.get(key)
        if isinstance(v, (list, tuple)) and len(v) == 3:
            out[key] = [float(x) for x in v]
    return out


def _triple(raw: Any, where: str, field: str, default) -> tuple[float, float, float]:
    if raw is None:
        return tuple(default)
    try:
        vals = tuple(float(v) for v in raw) if isinstance(raw, (list, tuple)) and len(raw) == 3 \
            and not any(isinstance(v, (bool, str)) for v in raw) else ()
    except (TypeError, ValueError, OverflowError):
        vals = ()
    if len(vals) != 3 or not all(math.isfinite(v) and abs(v) <= 1e6 for v in vals) or (
            field == "std" and min(vals) <= 0):
        raise _fail(where, field, f"must be three {'positive ' if field == 'std' else ''}"
                    f"numbers (R, G, B), got {raw!r}")
    return vals  # type: ignore[return-value]


def _backbone(raw: Any, kind: str, where: str) -> dict:
    if raw == "bundle":
        raw = {"source": "bundle"}
    if not isinstance(raw, dict):
        raise _fail(where, "backbone", "must be an object such as "
                    '{"source": "open_clip", "model": "RN50", "pretrained": "openai"}')
    bb = dict(raw)
    src = bb.get("source")
    if src not in BACKBONE_SOURCES:
        raise _fail(where, "backbone.source", f"unknown source {src!r} "
                    f"(expected one of {', '.join(BACKBONE_SOURCES)})")
    clip = kind in CLIP_KINDS
    if src == "timm":
        return _timm_backbone(bb, kind, where)
    if clip and src == "torchvision":
        raise _fail(where, "backbone.source", f"'torchvision' cannot serve kind '{kind}'")
    if not clip and src in ("open_clip", "hf-hub"):
        raise _fail(where, "backbone.source", f"{src!r} cannot serve kind 'resnet50'")
    if src == "hf-hub" and not isinstance(bb.get("id"), str):
        raise _fail(where, "backbone.id", "an hf-hub backbone needs an id such as 'org/repo'")
    if src == "file" and not isinstance(bb.get("path"), str):
        raise _fail(where, "backbone.path", "a file backbone needs a path to a weights file")
    local_dir = bb.get("local_dir")
    if local_dir is not None and (src != "open_clip" or not isinstance(local_dir, str)
                                  or not local_dir.strip()):
        raise _fail(where, "backbone.local_dir", "an open_clip folder path (with "
                    "open_clip_config.json), for source 'open_clip' only")
    if clip and src in ("open_clip", "file", "bundle") and not isinstance(bb.get("model"), str) \
            and local_dir is None:
        raise _fail(where, "backbone.model", "an open_clip model name such as 'RN50' is needed")
    _init_and_seed(bb, where, seeded_always=False)
    for key in ("model", "pretrained", "id", "path", "weights", "local_dir", "spec"):
        v = bb.get(key)
        if isinstance(v, str) and (len(v) > 4096 or "\x00" in v):
            raise _fail(where, f"backbone.{key}", "too long or not text")
    if src == "torchvision":
        w = bb.get("weights")
        if w is not None and not isinstance(w, str):
            raise _fail(where, "backbone.weights", "must be a torchvision weights name or null")
    return bb


def _timm_backbone(bb: dict, kind: str, where: str) -> dict:
    """A timm image encoder (``timm:NAME``, ``timm:hf-hub:ORG/REPO``, or a local file with
    its architecture named): image-only, so it serves the embedding heads, not zero-shot."""
    if kind not in ("clip-linear", "clip-mlp"):
        raise _fail(where, "backbone.source", f"a timm image encoder cannot serve kind "
                    f"'{kind}' (it has no text tower: use clip-linear or clip-mlp)")
    for key in ("model", "hf_hub", "path", "spec"):
        v = bb.get(key)
        if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > 4096
                              or "\x00" in v):
            raise _fail(where, f"backbone.{key}", "must be a short, non-empty string")
    if not bb.get("model") and not bb.get("hf_hub"):
        raise _fail(where, "backbone.model", "a timm backbone needs a timm architecture name "
                    "(e.g. 'vit_large_patch16_224') or an 'hf_hub' repository id")
    args = bb.get("model_args", {})
    if not isinstance(args, dict) or len(args) > 50 or not all(
            isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str)))
            for k, v in args.items()):
        raise _fail(where, "backbone.model_args", "must be an object of simple values "
                    "(numbers, strings, true/false), such as {\"init_values\": 1e-5}")
    _init_and_seed(bb, where, seeded_always=True)
    return bb


def _init_and_seed(bb: dict, where: str, seeded_always: bool) -> None:
    """``backbone.init`` (random, pretrained or absent) and ``backbone.seed`` (checked for a
    random init, or always when the family seeds every build)."""
    init = bb.get("init")
    if init not in (None, "random", "pretrained"):
        raise _fail(where, "backbone.init", f"unknown init {init!r} (expected random or pretrained)")
    seed = bb.get("seed", 0)
    if (seeded_always or init == "random") and (not isinstance(seed, int)
                                               or isinstance(seed, bool) or not 0 <= seed < 2**32):
        raise _fail(where, "backbone.seed", "must be an integer from 0 to 2^32 - 1")


def _prompts(raw: Any, where: str) -> Any:
    if isinstance(raw, str) and raw.strip():
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("classes"), dict):
        return raw
    raise _fail(where, "prompts", "a zero-shot bundle needs a prompt set name (e.g. "
                "'breakhis-default') or an object with 'templates' and 'classes'")


def validate_manifest(raw: dict, where: str | Path = "manifest") -> dict:
    """Check a manifest and return a normalised copy (defaults filled, class names canonical)."""
    where = str(where)
    if not isinstance(raw, dict):
        raise ModelError(f"{where}: the manifest must be a JSON object")
    m = dict(raw)
    sv = m.get("schema_version", SCHEMA_VERSION)
    if sv != SCHEMA_VERSION:
        raise _fail(where, "schema_version", f"unsupported version {sv!r} (this pvdesk reads "
                    f"{SCHEMA_VERSION})")
    m["schema_version"] = SCHEMA_VERSION
    for key in ("name", "kind"):
        if not isinstance(m.get(key), str) or not m[key].strip():
            raise _fail(where, key, "missing or not a string")
    name = m["name"]
    if len(name) > 200 or not name.isprintable():
        raise _fail(where, "name", "must be printable and at most 200 characters")
    if any(ch in name for ch in "/\\") or name.startswith("."):
        raise _fail(where, "name", f"{name!r} must not contain slashes or start with a dot")
    m["version"] = str(m.get("version", "0"))
    if len(m["version"]) > 100 or not m["version"].isprintable():
        raise _fail(where, "version", "must be printable and at most 100 characters")
    kind = m["kind"]
    if kind not in KINDS:
        raise _fail(where, "kind", f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    m["classes"] = _classes(m.get("classes"), where)
    if m.get("taxonomy") is not None:
        m["taxonomy"] = _taxonomy_field(m["taxonomy"], where)
    m["backbone"] = _backbone(m.get("backbone"), kind, where)
    if kind == "clip-zeroshot" and (m.get("prompts") is not None
                                    or _breakhis_names(m["classes"]) is not None):
        # custom classes without prompts are described by their display names
        # (pvdesk.models.prompts.DEFAULT_TEMPLATES)
        m["prompts"] = _prompts(m.get("prompts"), where)
    size = m.get("input_size", 224)
    if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 4096:
        raise _fail(where, "input_size", f"must be an integer number of pixels, got {size!r}")
    m["input_size"] = size
    clip = kind in CLIP_KINDS
    m["mean"] = list(_triple(m.get("mean"), where, "mean", CLIP_MEAN if clip else IMAGENET_MEAN))
    m["std"] = list(_triple(m.get("std"), where, "std", CLIP_STD if clip else IMAGENET_STD))
    tile_um = m.get("tile_um", DEFAULT_TILE_UM)
    if (isinstance(tile_um, bool) or not isinstance(tile_um, (int, float))
            or not math.isfinite(tile_um) or not TILE_UM_RANGE[0] <= tile_um <= TILE_UM_RANGE[1]):
        raise _fail(where, "tile_um", f"must be a positive, finite number of micrometres "
                    f"({TILE_UM_RANGE[0]:g} to {TILE_UM_RANGE[1]:g}), got {str(tile_um)[:40]}")
    m["tile_um"] = float(tile_um)
    trained = m.get("trained")
    if not isinstance(trained, bool):
        raise _fail(where, "trained", "must be true or false")
    prov = m.get("provenance", {})
    if not isinstance(prov, dict):
        raise _fail(where, "provenance", "must be an object (data, metrics, date, config)")
    m["provenance"] = prov
    from pvdesk.models.lineage import validate_lineage

    if m.get("lineage") is not None:
        m["lineage"] = validate_lineage(m["lineage"], where)
    return m
