"""Application settings: a JSON file in the platform's config folder (``paths.config_dir()``).

Plain JSON rather than QSettings so the core, the CLI and tests (PVDESK_HOME) see the same file.
Unknown keys are kept; bad values fall back to the defaults instead of failing the start.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from pvdesk.paths import config_dir

MAX_RECENT = 10
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class Settings:
    model_folders: list[str] = field(default_factory=list)
    default_device: str = "auto"
    reviewer: str = ""
    tile_cache_mb: int = 256
    recent_files: list[str] = field(default_factory=list)
    overlay_opacity: float = 0.45

    @staticmethod
    def path() -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls) -> Settings:
        s = cls()
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return s
        if not isinstance(data, dict):
            return s
        for f in fields(cls):
            if f.name not in data:
                continue
            value, default = data[f.name], getattr(s, f.name)
            if isinstance(default, list) and isinstance(value, list):
                setattr(s, f.name, [str(v) for v in value])
            elif isinstance(default, bool) or type(value) is type(default):
                setattr(s, f.name, value)
            elif isinstance(default, float) and isinstance(value, int):
                setattr(s, f.name, float(value))
        s.tile_cache_mb = max(64, min(8192, int(s.tile_cache_mb)))
        if s.default_device not in DEVICES:
            s.default_device = "auto"
        s.overlay_opacity = max(0.0, min(1.0, s.overlay_opacity))
        return s

    def save(self) -> None:
        p = self.path()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, p)

    def add_recent(self, path: str | os.PathLike) -> None:
        p = str(Path(path).expanduser().resolve())
        self.recent_files = [p] + [r for r in self.recent_files if r != p]
        del self.recent_files[MAX_RECENT:]
