"""The files a bundle points at: where they may be, and the checks every bundle passes when
it is found (no torch, only headers are read).

- The bundle's own ``weights.safetensors`` must be a regular file inside the bundle folder
  (a link to a file elsewhere, e.g. ``/etc/passwd``, is refused), with a valid safetensors
  header whose tensors fit the manifest (names, shapes, classes).
- ``backbone.path`` (and a prompt file named by ``prompts``) in a manifest: a relative path stays inside the bundle folder (no
  ``../../etc/passwd``, no link that leads out); an absolute one (also after ``~`` or
  ``$VAR``) is a file the user named and must have a weights extension (.safetensors, .pt,
  .pth, .bin). Weights the user names directly (``Bundle.load(weights=FILE)``, a file in
  ``PVDESK_WEIGHTS_DIR``) may be anywhere.

Every problem is a one-line ModelError naming the file and the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk.errors import ModelError
from pvdesk.models.manifest import WEIGHTS_NAME

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle

WEIGHT_EXTS = (".safetensors", ".pt", ".pth", ".bin")


def inside(folder: Path, path: Path) -> bool:
    """True when ``path``, with every link followed, lies within ``folder``."""
    root = os.path.realpath(folder)
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def own_weights_file(folder: Path) -> Path | None:
    """The bundle's weights.safetensors (None when there is none); ModelError when it is a
    link out of the folder or not a regular file."""
    from pvdesk.models.safetensors_header import check_regular_file

    f = Path(folder) / WEIGHTS_NAME
    if not os.path.lexists(f):
        return None
    if not inside(folder, f):
        raise ModelError(f"{f}: refused: a link to {os.path.realpath(f)}, outside the bundle "
                         "folder (copy the weights into the bundle)")
    check_regular_file(f)
    return f


def manifest_weights_path(bundle: Bundle, text) -> Path:
    """``backbone.path`` of the manifest as a path (see the module's doc for the rules)."""
    where = f"{bundle.where}: field 'backbone.path'"
    raw = str(text)
    if not raw.strip() or "\x00" in raw or len(raw) > 4096:
        raise ModelError(f"{where}: not a usable path")
    p = Path(os.path.expandvars(raw)).expanduser()
    if p.is_absolute():
        if p.suffix.lower() not in WEIGHT_EXTS:
            raise ModelError(f"{where}: {p} is not a weights file (.safetensors, .pt, .pth "
                             "or .bin)")
        return p
    if bundle.path is None:
        return p
    full = bundle.path / p
    if not inside(bundle.path, full):
        raise ModelError(f"{where}: {raw[:200]!r} leads outside the bundle folder; name a "
                         "file inside it, or give an absolute path")
    return full


def check_bundle_files(bundle: Bundle) -> None:
    """What every bundle found on disk must pass before it is listed as usable."""
    from pvdesk.models.safetensors_header import read_header
    from pvdesk.models.tensors import check_tensors

    if bundle.path is None:
        return
    f = own_weights_file(bundle.path)
    if f is not None:
        check_tensors(bundle, read_header(f).tensors, str(f))
    path = bundle.backbone.get("path")
    if path is not None:
        manifest_weights_path(bundle, path)
    prompts = bundle.manifest.get("prompts")
    if isinstance(prompts, str) and (prompts.endswith(".json") or "/" in prompts
                                     or "\\" in prompts):
        p = Path(prompts).expanduser()
        if not p.is_absolute() and not inside(bundle.path, bundle.path / p):
            raise ModelError(f"{bundle.where}: field 'prompts': {prompts[:200]!r} leads "
                             "outside the bundle folder")
