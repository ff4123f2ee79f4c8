"""What the taxonomy tests share: a three-class taxonomy's names and writing a taxonomy file."""

from __future__ import annotations

import json
from pathlib import Path

TSN = ["tumor", "stroma", "normal"]


def write_taxonomy_json(tmp_path: Path, obj, name: str = "taxonomy.json") -> Path:
    """``obj`` (a dict, or text as it is) written to ``tmp_path / name``."""
    p = tmp_path / name
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return p
