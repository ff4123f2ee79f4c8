"""Resume state of a cohort: what makes a slide's outputs complete, and swapping them in.

A slide's outputs are written into ``OUT/.partial-<name>/`` and, once every file is there
(the last one is ``cohort.json``, the marker), the folder replaces ``OUT/<name>`` by two
renames. ``cohort.json`` records the slide's key (slide id, every bundle's manifest hash and
weights sha256, the grid parameters, the regions it was limited to), the file's size and
time (so a resumed run need not re-hash an unchanged slide) and the slide's cohort rows.
``--resume`` skips a slide whose marker has the key this run would use (and, with a store,
whose runs the store holds under that key). Leftover ``.partial-*`` and ``.old-*`` folders
(and the temporary file of a cohort.csv or summary being rewritten when the run was killed)
of an interrupted run are removed when a run starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from pvdesk.export.atomic import atomic_write

MARKER = "cohort.json"
PARTIAL, OLD = ".partial-", ".old-"
ATOMIC_TMP = ".tmp"  # pvdesk.export.atomic's temporary files: .<name>.<random>.tmp
_SHA_CACHE: dict = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached per (path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def models_key(bundles) -> list[dict]:
    """Each bundle's identity: name, version, manifest hash and weights sha256 (None when
    the bundle has no weights file of its own: random or downloaded backbones)."""
    out = []
    for b in bundles:
        w = b.weights_file
        out.append({"name": b.name, "version": b.version, "manifest_hash": b.manifest_hash,
                    "weights_sha256": file_sha256(w) if w is not None else None})
    return out


def slide_key(slide_id: str, models: list[dict], grid: dict, regions) -> str:
    """The key a slide's complete outputs are recorded under (a sha256 hex digest)."""
    blob = json.dumps({"slide_id": slide_id, "models": models, "grid": grid,
                       "regions": regions or None}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_stamp(path: str) -> list | None:
    """(size, mtime_ns) of a slide file; None for folders (their content is re-identified)."""
    p = Path(path)
    if not p.is_file():
        return None
    st = p.stat()
    return [st.st_size, st.st_mtime_ns]


def read_marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none, or a damaged one: the slide is simply redone
        return None
    return data if isinstance(data, dict) else None


def write_marker(folder: Path, data: dict) -> None:
    with atomic_write(folder / MARKER) as fh:
        json.dump(data, fh, indent=1, sort_keys=True)


def partial_folder(out_dir: Path, name: str) -> Path:
    return out_dir / f"{PARTIAL}{name}"


def swap_in(out_dir: Path, name: str) -> Path:
    """Move ``.partial-<name>`` to ``<name>``, replacing an earlier one."""
    final, tmp, old = out_dir / name, partial_folder(out_dir, name), out_dir / f"{OLD}{name}"
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def clean_leftovers(out_dir: Path) -> list[str]:
    """Remove what an interrupted run left half-made; returns the names removed."""
    removed = []
    if not out_dir.is_dir():
        return removed
    for p in sorted(out_dir.iterdir()):
        if p.is_dir() and p.name.startswith((PARTIAL, OLD)):
            shutil.rmtree(p)
            removed.append(p.name)
        elif p.is_file() and p.name.startswith(".") and p.name.endswith(ATOMIC_TMP):
            p.unlink()  # cohort.csv or the summary, killed while being rewritten
            removed.append(p.name)
    return removed
