"""Finding bundles (built-in, user folder, extra folders) and writing new ones."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import heavy
from pvdesk.errors import ModelError
from pvdesk.models.bundle import Bundle
from pvdesk.models.manifest import MANIFEST_NAME, WEIGHTS_NAME, validate_manifest
from pvdesk.paths import resources_dir, user_models_dir

if TYPE_CHECKING:
    import torch


def builtin_models_dir() -> Path:
    return resources_dir() / "models"


def _search_dirs(extra_dirs: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    dirs = [(builtin_models_dir(), True), (user_models_dir(), False)]
    dirs += [(Path(d), False) for d in extra_dirs]
    return dirs


def _bundles_in(folder: Path, builtin: bool, errors: list[str] | None,
                broken: list[tuple[Path, str]] | None = None) -> list[Bundle]:
    """Bundles in ``folder`` (the folder itself, or its immediate sub-folders). Each is
    validated on its own: a broken one (its reason appended to ``errors``, and with its
    folder to ``broken``) never hides the others."""
    def failed(where: Path, message: str) -> None:
        if errors is not None:
            errors.append(message)
        if broken is not None:
            broken.append((where, message))

    try:
        if not folder.is_dir():
            return []
        if os.path.lexists(folder / MANIFEST_NAME):
            candidates = [folder]
        else:
            candidates = sorted(p for p in folder.iterdir()
                                if p.is_dir() and os.path.lexists(p / MANIFEST_NAME))
    except OSError as exc:
        failed(folder, f"{folder}: cannot list the models folder ({exc.strerror or exc})")
        return []
    found = []
    for c in candidates:
        try:
            found.append(Bundle.from_folder(c, builtin=builtin))
        except ModelError as exc:
            failed(c, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad bundle must not hide the rest
            failed(c, f"{c}: cannot be read ({type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:200]})")
    return found


def find_bundles(extra_dirs: Iterable[str | Path] = (), errors: list[str] | None = None
                 ) -> list[Bundle]:
    """Every valid bundle: built-ins (resources/models), the user's models folder, extra_dirs.

    A later folder's bundle with the same name as an earlier one is skipped (built-ins win,
    then the user folder). Invalid bundles are skipped; their one-line errors are appended
    to ``errors`` when given.
    """
    return _find(extra_dirs, errors)


def _find(extra_dirs, errors: list[str] | None,
          broken: list[tuple[Path, str]] | None = None) -> list[Bundle]:
    seen: dict[str, Bundle] = {}
    for folder, builtin in _search_dirs(extra_dirs):
        for b in _bundles_in(folder, builtin, errors, broken):
            if b.name in seen:
                if errors is not None and seen[b.name].path != b.path:
                    errors.append(f"{b.where}: name {b.name!r} already used by {seen[b.name].where}"
                                  "; skipped")
                continue
            seen[b.name] = b
    return list(seen.values())


def resolve_bundle(name_or_folder: str | Path, extra_dirs: Iterable[str | Path] = ()) -> Bundle:
    """A bundle by folder path (a folder holding manifest.json, or the manifest itself)
    or by name. ModelError when unknown, listing the names that are known."""
    text = str(name_or_folder)
    p = Path(text).expanduser()
    if p.is_file() and p.name == MANIFEST_NAME:
        p = p.parent
    if p.is_dir():
        if not os.path.lexists(p / MANIFEST_NAME):
            raise ModelError(f"{p}: not a model bundle (no {MANIFEST_NAME} in this folder)")
        builtin = p.resolve().parent == builtin_models_dir().resolve()
        return Bundle.from_folder(p, builtin=builtin)
    broken: list[tuple[Path, str]] = []
    bundles = _find(extra_dirs, None, broken)
    for b in bundles:
        if b.name == text:
            return b
    for where, message in broken:
        if where.name == text:
            raise ModelError(f"model {text!r}: the bundle is broken and skipped: {message}")
    names = ", ".join(sorted(b.name for b in bundles)) or "none"
    raise ModelError(f"model {text!r}: no bundle with that name or folder (known: {names})")


def _atomic_write(path: Path, writer) -> None:
    from pvdesk.export.atomic import atomic_path

    with atomic_path(path) as tmp:
        writer(str(tmp))


def write_bundle(folder: str | Path, manifest: dict, tensors: dict[str, torch.Tensor]
                 ) -> Bundle:
    """Write ``manifest.json`` and ``weights.safetensors`` (when ``tensors`` is non-empty) into
    ``folder``, each atomically (temp file + rename, the manifest last), and return the Bundle.

    The manifest and tensor shapes are validated first; nothing is written when they are wrong.
    """
    save_file = heavy.safetensors_torch().save_file

    from pvdesk.models.tensors import check_tensors

    folder = Path(folder)
    where = folder / MANIFEST_NAME
    m = validate_manifest(manifest, where)
    bundle = Bundle(m, folder)
    clean = {k: v.detach().to("cpu").contiguous() for k, v in (tensors or {}).items()}
    check_tensors(bundle, clean, str(folder / WEIGHTS_NAME))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        weights = folder / WEIGHTS_NAME
        if clean:
            meta = {"format": "pt", "pvdesk_bundle": m["name"]}
            _atomic_write(weights, lambda tmp: save_file(clean, tmp, metadata=meta))
            if isinstance(m.get("lineage"), dict):  # the manifest names the file it goes with
                from pvdesk.models.lineage import file_sha256

                m["lineage"]["files"] = [{"file": WEIGHTS_NAME, "sha256": file_sha256(weights),
                                          "size": weights.stat().st_size}]
        elif weights.exists():
            weights.unlink()
        text = json.dumps(m, indent=2, sort_keys=False) + "\n"
        _atomic_write(where, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{folder}: cannot write the bundle ({exc})") from None
    return Bundle.from_folder(folder)
