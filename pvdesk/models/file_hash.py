"""sha256 of weights files, cached by (path, size, mtime), and the check against a manifest's
lineage: a bundle whose weights file is not the one its manifest records is refused.

The cache is a small JSON file in pvdesk's cache folder (``sha256.json``): hashing a 1 GB
encoder takes seconds, so it is done once per file version, not on every run. A damaged
cache is ignored and rewritten.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk.errors import ModelError

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle

CACHE_NAME = "sha256.json"
MAX_ENTRIES = 2000
_lock = threading.Lock()


def _cache_file() -> Path:
    from pvdesk.paths import cache_dir

    return cache_dir() / CACHE_NAME


def _read(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or damaged or unreadable: rebuilt from the files
        return {}
    return raw if isinstance(raw, dict) else {}


def sha256_of(path: str | Path) -> str:
    """The file's sha256 (hex); from the cache when its path, size and mtime are unchanged."""
    from pvdesk.models.lineage import file_sha256

    real = os.path.realpath(path)
    st = os.stat(real)
    ident = [st.st_size, st.st_mtime_ns]
    cache = _cache_file()
    with _lock:
        entries = _read(cache)
        hit = entries.get(real)
        if isinstance(hit, list) and len(hit) == 3 and hit[:2] == ident \
                and isinstance(hit[2], str):
            return hit[2]
    digest = file_sha256(real)
    with _lock:
        entries = _read(cache)
        entries[real] = ident + [digest]
        if len(entries) > MAX_ENTRIES:
            entries = dict(list(entries.items())[-MAX_ENTRIES:])
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{CACHE_NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(entries), encoding="utf-8")
            os.replace(tmp, cache)
        except OSError as exc:  # a read-only cache folder: the hash is still right
            import sys

            print(f"pvdesk: note: cannot write the sha256 cache {cache} ({exc.strerror or exc})",
                  file=sys.stderr)
    return digest


def describe(path: str | Path) -> dict:
    """{file, sha256, size} of a weights file, for a manifest."""
    p = Path(path)
    return {"file": str(p), "sha256": sha256_of(p), "size": p.stat().st_size}


def _refuse(path: Path, expected: str, found: str, what: str) -> ModelError:
    return ModelError(f"{path}: sha256 {found[:12]} does not match the {expected[:12]} its "
                      f"manifest records for {what}; refused (a different or changed file)")


def verify(bundle: Bundle, backbone_file: str | Path | None) -> None:
    """Refuse weights whose sha256 differs from what the manifest's lineage records: the
    bundle's own weights.safetensors (``lineage.files``) and the backbone file that will be
    read (the backbone part's ``weights``, when it records exactly one file)."""
    lineage = bundle.lineage or {}
    own = bundle.weights_file
    if own is not None:
        for rec in lineage.get("files") or []:
            if Path(str(rec.get("file", ""))).name == own.name and rec.get("sha256"):
                found = sha256_of(own)
                if found != rec["sha256"]:
                    raise _refuse(own, rec["sha256"], found, "the bundle's own weights")
    if backbone_file is None or (own is not None and Path(backbone_file) == own):
        return
    for part in lineage.get("parts") or []:
        recs = [w for w in (part.get("weights") or []) if isinstance(w, dict)
                and isinstance(w.get("sha256"), str)]
        if part.get("role") == "backbone" and len(recs) == 1:
            found = sha256_of(backbone_file)
            if found != recs[0]["sha256"]:
                raise _refuse(Path(backbone_file), recs[0]["sha256"], found,
                              "its backbone")
