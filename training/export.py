"""Trained bundles: the manifest (with provenance) and the folder layout.

A bundle written here holds, beside pvdesk's manifest.json and weights.safetensors:
``split.csv`` (the exact images of each split), ``report.md``, ``metrics.json``,
``confusion.png`` and ``curves.png`` (when the head has epochs). Provenance in the manifest:
data (where the data came from), data_hash (sha256 of the split manifest rows), counts,
metrics (the summary of the held-out evaluation), date, config (every option, the seed
included), backbone_start (what training started from), software versions.
The manifest is written last, so a folder with manifest.json is a complete bundle.
"""

from __future__ import annotations

import platform
from pathlib import Path

from pvdesk import __version__ as pvdesk_version
from pvdesk import heavy
from pvdesk.clock import now_iso
from pvdesk.export.atomic import atomic_write
from pvdesk.models import Bundle, write_bundle
from pvdesk.models.manifest import MANIFEST_NAME, read_manifest, validate_manifest
from training.errors import TrainingError


def resolved_backbone(base: Bundle) -> dict:
    """The base bundle's backbone field, for a new bundle that shares the backbone: a
    relative weights path made absolute, and weights found under the base bundle's own name
    in PVDESK_WEIGHTS_DIR pinned by path (the new bundle has another name)."""
    import os

    from pvdesk.models.weights import WEIGHTS_DIR_ENV, plan

    bb = dict(base.backbone)
    if bb.get("path") and base.path is not None and not Path(bb["path"]).is_absolute():
        bb["path"] = str((base.path / bb["path"]).resolve())
    wdir = os.environ.get(WEIGHTS_DIR_ENV)
    if wdir and not bb.get("path"):
        try:
            p = plan(base)
        except Exception:  # noqa: BLE001 - unknown weights: leave the field as it is
            return bb
        if (p.how == "cached" and p.path is not None and p.path.stem == base.name
                and Path(p.path).parent.resolve() == Path(wdir).expanduser().resolve()):
            bb["path"] = str(Path(p.path).resolve())
    return bb


def software() -> dict:
    import sklearn
    torch = heavy.torch()

    from pvdesk.models.bundle_admin import software as libraries

    return {"pvdesk": pvdesk_version, "torch": torch.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version(),
            **{k: v for k, v in libraries().items() if k not in ("pvdesk", "torch")}}


def backbone_part(base: Bundle) -> dict:
    """The frozen backbone a head stands on, as a lineage part: its bundle, whether it is
    trained (and why not), its manifest's hash and the sha256 of the weights file it was
    read from (none for a random init)."""
    from pvdesk.models.file_hash import sha256_of
    from pvdesk.models.weights import plan

    part = {"role": "backbone", "name": base.name, "version": base.version,
            "kind": base.kind, "trained": base.trained,
            "manifest_sha256": base.manifest_hash, "weights": []}
    if base.untrained_reasons:
        part["why"] = "; ".join(r.removeprefix("its ") for r in base.untrained_reasons)
    try:
        p = plan(base)
    except Exception:  # noqa: BLE001 - an unknown source: recorded without a file
        p = None
    if p is not None and p.how in ("bundle", "file", "cached") and p.path is not None \
            and Path(p.path).is_file():
        part["weights"] = [{"file": str(Path(p.path).resolve()),
                            "sha256": sha256_of(p.path), "size": Path(p.path).stat().st_size}]
    elif p is not None and p.how == "random":
        part["init"] = f"random (seed {base.backbone.get('seed', 0)})"
    return part


def make_manifest(name: str, kind: str, classes: list[str], backbone: dict, input_size: int,
                  mean, std, tile_um: float, provenance: dict, description: str,
                  head: dict | None = None, lineage: dict | None = None) -> dict:
    """The new bundle's manifest. ``trained`` follows ``lineage``: false as soon as a part
    it depends on (its backbone) is untrained, so the bundle never claims more than it is."""
    parts = (lineage or {}).get("parts") or []
    trained = all(p["trained"] for p in parts if p.get("gates", True))
    m = {"schema_version": 1, "name": name, "version": "1", "kind": kind,
         "description": description, "classes": list(classes), "backbone": backbone,
         "input_size": int(input_size), "mean": list(mean), "std": list(std),
         "tile_um": float(tile_um), "trained": trained, "provenance": provenance}
    if lineage:
        m["lineage"] = lineage
    if head:
        m["head"] = head
    return m


def prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to replace a finished bundle unless asked; never leave a stale manifest."""
    manifest = out / MANIFEST_NAME
    if manifest.exists():
        if not overwrite:
            raise TrainingError(f"{out}: a bundle is already here (manifest.json); pass "
                                "--overwrite to replace it, or choose another --out")
        manifest.unlink()  # the folder stops being a bundle until the new one is complete
        for stale in ("report.md", "metrics.json", "confusion.png", "curves.png",
                      "history.json"):
            (out / stale).unlink(missing_ok=True)
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)


def save_bundle(out: Path, manifest: dict, tensors: dict) -> Bundle:
    return write_bundle(out, manifest, tensors)


def record_evaluation(bundle: Bundle, key: str, summary: dict, own_test: bool) -> bool:
    """Write an evaluation's summary into a (user) bundle's manifest provenance.

    ``provenance.evaluations[key]`` always; ``provenance.metrics`` too when it is the bundle's
    own held-out split. Returns False (and changes nothing) for built-in or read-only bundles.
    """
    if bundle.path is None or bundle.builtin:
        return False
    path = bundle.path / MANIFEST_NAME
    try:
        m = read_manifest(path)
        prov = dict(m.get("provenance") or {})
        evals = dict(prov.get("evaluations") or {})
        evals[key] = {**summary, "date": now_iso()}
        prov["evaluations"] = evals
        if own_test:
            prov["metrics"] = summary
        m["provenance"] = prov
        validate_manifest(m, path)
        import json

        with atomic_write(path) as fh:
            fh.write(json.dumps(m, indent=2) + "\n")
    except OSError:
        return False
    return True
