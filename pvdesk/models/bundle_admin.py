"""Creating and importing bundles in the user's models folder (``pvdesk models add`` and
``pvdesk models import``).

A bundle is assembled in a hidden folder beside its destination, validated as any bundle
found on disk is (``Bundle.from_folder``), and only then renamed into place: a failed add or
import leaves nothing behind. The manifest records the backbone spec, the sha256 and size of
each weights file it stands on, and the library versions (provenance).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pvdesk.clock import now_iso
from pvdesk.errors import ModelError
from pvdesk.models.bundle import Bundle
from pvdesk.models.manifest import MANIFEST_NAME

TAXONOMY_FILE = "taxonomy.json"
PROMPTS_FILE = "prompts.json"
HEAD_KINDS = ("clip-linear", "clip-mlp")


def software() -> dict:
    """Versions of the libraries a bundle's numbers depend on (those installed here)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("pvdesk", "torch", "torchvision", "open_clip_torch", "timm", "safetensors"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _staging(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.part-{uuid.uuid4().hex[:8]}"


def _place(tmp: Path, dest: Path, overwrite: bool) -> None:
    if dest.exists():
        if not overwrite:
            raise ModelError(f"{dest}: a bundle with this name is already there (pass "
                             "--overwrite to replace it, or choose another name)")
        old = _staging(dest)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old)
        return
    os.replace(tmp, dest)


@contextmanager
def _staged(dest: Path, overwrite: bool, verb: str) -> Iterator[Path]:
    """A hidden staging folder beside ``dest`` (not yet made) for the body to fill; renamed
    into place when the body returns, removed whatever happens."""
    tmp = _staging(dest)
    try:
        yield tmp
        _place(tmp, dest, overwrite)
    except OSError as exc:
        raise ModelError(f"{dest}: cannot {verb} the bundle ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _weights_record(path: Path) -> dict:
    from pvdesk.models.file_hash import describe

    return describe(path)


def backbone_files(bundle: Bundle) -> list[dict]:
    """{file, sha256, size} of the backbone weights file a bundle reads (empty when it is
    random or not downloaded yet)."""
    from pvdesk.models.weights import plan

    p = plan(bundle)
    if p.how in ("file", "cached") and p.path is not None and Path(p.path).is_file():
        return [_weights_record(Path(p.path))]
    return []


def _classes_and_taxonomy(classes: list[str] | None, taxonomy: str | None
                          ) -> tuple[list[str], Path | None]:
    if taxonomy is not None:
        from pvdesk.taxonomy import load_taxonomy_file

        tax = load_taxonomy_file(Path(taxonomy).expanduser())
        names = list(tax.names)
        if classes and list(classes) != names:
            raise ModelError(f"{taxonomy}: its classes ({', '.join(names)}) are not --classes "
                             f"({', '.join(classes)})")
        return names, Path(taxonomy).expanduser()
    if classes:
        return list(classes), None
    from pvdesk.taxonomy import CLASS_NAMES

    return list(CLASS_NAMES), None


def _default_prompts(classes: list[str]):
    from pvdesk.taxonomy import CLASS_NAMES, GROUPS

    if all(c in CLASS_NAMES for c in classes) or all(c in GROUPS for c in classes):
        return "breakhis-default"
    return {"templates": ["an H&E stained histopathology image of {}.",
                          "a microscopy image of {} tissue."],
            "classes": {c: [c.replace("_", " ")] for c in classes}}


def _head_tensors(path: str, kind: str) -> dict:
    from pvdesk.models.tensors import load_checkpoint

    tensors = load_checkpoint(Path(path).expanduser())
    head = {k: v for k, v in tensors.items() if k.startswith("head.")}
    if not head:
        raise ModelError(f"{path}: no head.* tensors (a {kind} head: head.weight and "
                         "head.bias, e.g. from a bundle written by pvdesk-train)")
    return head


def _not_builtin(name: str) -> None:
    from pvdesk.models.registry import builtin_models_dir

    if (builtin_models_dir() / name).exists():
        raise ModelError(f"model name {name!r}: a built-in bundle has this name (it would be "
                         "hidden by it); choose another name")


def add_bundle(name: str, spec: str, *, weights: str | None = None, kind: str | None = None,
               classes: list[str] | None = None, taxonomy: str | None = None,
               prompts: str | None = None, head: str | None = None,
               tile_um: float | None = None, dest_dir: Path | None = None,
               overwrite: bool = False) -> Bundle:
    """Write a bundle named ``name`` for backbone ``spec`` into the user's models folder."""
    from pvdesk.models import specs
    from pvdesk.models.manifest import validate_manifest
    from pvdesk.models.registry import write_bundle
    from pvdesk.paths import user_models_dir

    if not name or name.startswith(".") or any(c in name for c in "/\\\x00") or len(name) > 200:
        raise ModelError(f"model name {name[:200]!r}: must not be empty, start with a dot or "
                         "hold a slash")
    _not_builtin(name)
    bb = specs.parse(spec, weights, kind)
    kind = kind or specs.default_kind(bb)
    if kind in HEAD_KINDS and head is None:
        raise ModelError(f"--kind {kind} needs --head FILE (head.weight/head.bias); train one "
                         "with: pvdesk-train train --backbone SPEC --data DIR --out BUNDLE")
    if head is not None and kind not in HEAD_KINDS:
        raise ModelError(f"--head is for --kind clip-linear or clip-mlp, not {kind}")
    if prompts is not None and kind != "clip-zeroshot":
        raise ModelError("--prompts is for zero-shot bundles (--kind clip-zeroshot)")
    names, tax_file = _classes_and_taxonomy(classes, taxonomy)
    pre = specs.preprocess(bb)
    dest = (Path(dest_dir) if dest_dir is not None else user_models_dir()) / name
    m: dict = {"schema_version": 1, "name": name, "version": "1", "kind": kind,
               "description": f"{kind} on {spec} (pvdesk models add)", "classes": names,
               "backbone": bb, "trained": True, **pre,
               "provenance": {"backbone_spec": spec, "created_by": "pvdesk models add",
                              "date": now_iso(), "software": software(),
                              "preprocess_from": "the model's own config" if pre else
                              "pvdesk's defaults (the model states none)"}}
    if tile_um is not None:
        m["tile_um"] = float(tile_um)
    if kind == "clip-zeroshot":
        m["prompts"] = PROMPTS_FILE if prompts is not None else _default_prompts(names)
    if tax_file is not None:
        m["taxonomy"] = TAXONOMY_FILE
    tensors = _head_tensors(head, kind) if head is not None else {}
    validate_manifest(m, dest / MANIFEST_NAME)  # a clear line before anything is written
    probe = Bundle({k: v for k, v in m.items() if k != "taxonomy"})  # no folder yet
    files = backbone_files(probe)
    m["lineage"] = {"parts": [{"role": "backbone", "name": spec, "trained": True,
                               "weights": files}]}
    if head is not None:
        m["lineage"]["parts"].append({"role": "head", "kind": kind, "trained": True,
                                      "weights": [_weights_record(Path(head).expanduser())]})
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _staged(dest, overwrite, "write") as tmp:
        tmp.mkdir()
        if tax_file is not None:
            shutil.copyfile(tax_file, tmp / TAXONOMY_FILE)
        if prompts is not None:
            shutil.copyfile(Path(prompts).expanduser(), tmp / PROMPTS_FILE)
        write_bundle(tmp, m, tensors)
    return Bundle.from_folder(dest)


def import_bundle(folder: str | Path, name: str | None = None, dest_dir: Path | None = None,
                  overwrite: bool = False) -> Bundle:
    """Validate the bundle in ``folder`` and copy it into the user's models folder (as
    ``name``, default its manifest's name). Its weights are checked against its lineage."""
    from pvdesk.models.file_hash import verify
    from pvdesk.models.manifest import read_manifest
    from pvdesk.paths import user_models_dir

    src = Path(folder).expanduser()
    if not src.is_dir():
        raise ModelError(f"{src}: not a folder (a bundle is a folder with {MANIFEST_NAME})")
    if not (src / MANIFEST_NAME).is_file():
        raise ModelError(f"{src}: not a model bundle (no {MANIFEST_NAME} in this folder)")
    bundle = Bundle.from_folder(src)
    verify(bundle, None)
    target_name = name or bundle.name
    root = Path(dest_dir) if dest_dir is not None else user_models_dir()
    dest = root / target_name
    if dest.resolve() == src.resolve():
        raise ModelError(f"{src}: already in the models folder")
    _not_builtin(target_name)
    root.mkdir(parents=True, exist_ok=True)
    with _staged(dest, overwrite, "copy") as tmp:
        shutil.copytree(src, tmp, symlinks=False, ignore=shutil.ignore_patterns(
            ".*", "__pycache__", "checkpoint*", "*.ckpt"))
        if target_name != bundle.name:
            m = read_manifest(tmp / MANIFEST_NAME)
            m["name"] = target_name
            (tmp / MANIFEST_NAME).write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
        verify(Bundle.from_folder(tmp), None)
    return Bundle.from_folder(dest)


def weights_files(bundle: Bundle) -> list[tuple[str, str, int]]:
    """(role, path, size) of every weights file the bundle reads here (its own and the
    backbone's), for ``pvdesk models check``."""
    out = []
    if bundle.weights_file is not None:
        out.append(("bundle", str(bundle.weights_file), bundle.weights_file.stat().st_size))
    for rec in backbone_files(bundle):
        if rec["file"] != str(bundle.weights_file):
            out.append(("backbone", rec["file"], rec["size"]))
    return out
