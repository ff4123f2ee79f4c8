"""What a bundle stands on, and what it can honestly claim. No torch here.

A bundle is untrained when anything it stands on is: its own weights (``trained: false``),
a CLIP backbone with random weights under a head that does not train it (clip-zeroshot,
clip-linear, clip-mlp), or any part its manifest's ``lineage`` records as untrained. The
manifest written by pvdesk-train records that lineage::

    "lineage": {
      "parts": [
        {"role": "backbone", "name": "demo-clip-rn50", "version": "1", "trained": false,
         "why": "random weights (seed 0)", "manifest_sha256": "...",
         "weights": [{"file": "/abs/path.safetensors", "sha256": "..."}]},
        {"role": "head", "kind": "clip-linear", "trained": true, "data_hash": "..."}
      ],
      "files": [{"file": "weights.safetensors", "sha256": "..."}]
    }

A part with ``"gates": false`` is recorded but does not decide (ResNet50 fine-tuning trains
every weight, so where it started is history, not a dependency). ``files`` (the bundle's own
weights, hashed when it is written) and each part's ``weights`` hold sha256 sums.

Evaluation: a bundle's recorded evaluation is its own held-out split's metrics
(``provenance.metrics``) or, failing that, the newest clean ``provenance.evaluations``
entry. A zero-shot bundle without one is "pretrained, not evaluated on pathology".
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

from pvdesk.errors import ModelError

CLIP_KINDS = ("clip-zeroshot", "clip-linear", "clip-mlp")
NOT_EVALUATED_ZEROSHOT = "pretrained, not evaluated on pathology"
NOT_EVALUATED = "not evaluated"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


SHA_HEX = re.compile(r"[0-9a-f]{64}")


def own_weights_sha256(lineage: dict | None, name: str = "weights.safetensors") -> str:
    """The sha256 the lineage's ``files`` record for the bundle's own weights file (``name``),
    lowercase hex; "" when none is recorded (no weights file of its own, e.g. zero-shot CLIP
    on library weights, or a manifest written before lineage) or the record is not a sha256."""
    for rec in (lineage or {}).get("files") or []:
        if isinstance(rec, dict) and Path(str(rec.get("file", ""))).name == name:
            sha = str(rec.get("sha256", "")).strip().lower()
            return sha if SHA_HEX.fullmatch(sha) else ""
    return ""


def validate_lineage(raw, where: str) -> dict | None:
    """The manifest's ``lineage`` field checked (None when absent)."""
    if raw is None:
        return None

    def fail(problem: str) -> ModelError:
        return ModelError(f"{where}: field 'lineage': {problem}")

    if not isinstance(raw, dict):
        raise fail("must be an object with 'parts' (and 'files')")
    parts = raw.get("parts", [])
    if not isinstance(parts, list) or len(parts) > 100:
        raise fail("'parts' must be a list")
    for p in parts:
        if not isinstance(p, dict) or not isinstance(p.get("trained"), bool):
            raise fail("every part must be an object with 'trained': true or false")
        if "gates" in p and not isinstance(p["gates"], bool):
            raise fail("a part's 'gates' must be true or false")
    for key in ("files",):
        files = raw.get(key, [])
        if not isinstance(files, list) or not all(
                isinstance(f, dict) and isinstance(f.get("sha256"), str) for f in files):
            raise fail(f"'{key}' must be a list of {{'file', 'sha256'}} objects")
    return dict(raw)


def random_backbone(manifest: dict) -> bool:
    bb = manifest.get("backbone") or {}
    if bb.get("path") or bb.get("local_dir"):  # a file or open_clip folder the user named
        return False
    return bb.get("init") == "random" or (
        bb.get("source") == "open_clip" and not bb.get("pretrained")) or (
        bb.get("source") == "torchvision" and not bb.get("weights"))


def untrained_reasons(manifest: dict) -> list[str]:
    """Why a (validated) manifest's bundle is untrained; empty when it is trained."""
    reasons: list[str] = []
    kind = manifest.get("kind")
    bb = manifest.get("backbone") or {}
    parts = (manifest.get("lineage") or {}).get("parts") or []
    for p in parts:
        if p.get("gates", True) and p["trained"] is False:
            what = " ".join(str(v) for v in (p.get("role", "part"), p.get("name")) if v)
            reasons.append(f"its {what} is untrained" + (f" ({p['why']})" if p.get("why")
                                                          else ""))
    if kind in CLIP_KINDS and random_backbone(manifest) and bb.get("source") != "bundle":
        reasons.append(f"its CLIP backbone {bb.get('model') or ''} has random weights "
                       f"(seed {bb.get('seed', 0)})".replace("  ", " "))
    elif kind in CLIP_KINDS and bb.get("init") == "random":  # in the bundle, random at start
        reasons.append("its CLIP backbone has random weights")
    if manifest.get("trained") is False and not reasons:
        reasons.append("its weights are random (a demo)")
    return list(dict.fromkeys(reasons))


def _clean(ev) -> bool:
    return isinstance(ev, dict) and ev.get("accuracy") is not None and not ev.get("contaminated")


def recorded_evaluation(manifest: dict) -> dict | None:
    """The evaluation a manifest records: its own held-out metrics, else the newest clean
    entry of ``provenance.evaluations``; None when there is none."""
    prov = manifest.get("provenance") or {}
    own = prov.get("metrics")
    if _clean(own):
        return dict(own)
    evals = prov.get("evaluations") or {}
    found = [v for v in evals.values() if _clean(v)] if isinstance(evals, dict) else []
    if not found:
        return None
    return dict(max(found, key=lambda v: str(v.get("date", ""))))


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score 95% interval of a proportion (None for n = 0)."""
    if n <= 0:
        return None
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluation_text(manifest: dict) -> str:
    """One line: the recorded evaluation with its denominator and interval, or why none."""
    ev = recorded_evaluation(manifest)
    if ev is None:
        zero_shot = manifest.get("kind") == "clip-zeroshot" and not untrained_reasons(manifest)
        return NOT_EVALUATED_ZEROSHOT if zero_shot else NOT_EVALUATED
    acc, n = ev.get("accuracy"), ev.get("n")
    split = ev.get("split") or "held-out"
    split = "validation" if split == "val" else split
    text = f"{split} accuracy {acc:.3f}"
    if isinstance(n, int) and n > 0:
        text += f" on {n} images"
        ci = ev.get("accuracy_ci95")
        if ci:
            text += f" (95% CI {ci[0]:.3f}-{ci[1]:.3f}, bootstrap over {ev.get('ci_unit', 'image')}s)"
        elif ev.get("no_interval"):
            text += " (no interval: too few patients)"
        else:  # an older summary: the image-level Wilson interval
            lo, hi = wilson(round(acc * n), n)
            text += f" (95% CI {lo:.3f}-{hi:.3f}, Wilson, images taken as independent)"
    if ev.get("macro_f1") is not None:
        text += f", macro-F1 {ev['macro_f1']:.3f}"
    if ev.get("split") == "val":
        text += " (validation also chose the model: optimistic)"
    return text


def status_text(manifest: dict) -> str:
    """"UNTRAINED: ...", "pretrained, not evaluated on pathology" or "trained"."""
    reasons = untrained_reasons(manifest)
    if reasons:
        return "UNTRAINED: " + "; ".join(reasons)
    if manifest.get("kind") == "clip-zeroshot" and recorded_evaluation(manifest) is None:
        return NOT_EVALUATED_ZEROSHOT
    parts = (manifest.get("lineage") or {}).get("parts") or []
    start = next((p for p in parts if p.get("role") == "start"), None)
    if start is not None and start.get("trained") is False:
        return "trained (from random initialisation)"
    return "trained"


def part_text(part: dict) -> str:
    """One lineage part in words, for ``pvdesk models``."""
    what = " ".join(str(v) for v in (part.get("role"), part.get("name"), part.get("version"))
                    if v)
    state = "trained" if part.get("trained") else "UNTRAINED"
    if part.get("why"):
        state += f": {part['why']}"
    files = part.get("weights") or []
    sums = ", ".join(f"sha256 {f['sha256'][:12]}" for f in files if f.get("sha256"))
    return f"{what} ({state})" + (f" [{sums}]" if sums else "")
