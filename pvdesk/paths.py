"""Where things live: the bundled resources and the user's folders (platformdirs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "pvdesk"


def resources_dir() -> Path:
    """The bundled resources/ folder (model manifests, prompts, the sample slide, styles)."""
    env = os.environ.get("PVDESK_RESOURCES")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parents[1] / "resources",  # source tree / editable install
        Path(sys.prefix) / "share" / APP_NAME / "resources",  # wheel data files
        Path(getattr(sys, "_MEIPASS", "")) / "resources",  # PyInstaller bundle
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0] if env else candidates[1]


def sample_slide() -> Path:
    return resources_dir() / "samples" / "CMU-1-Small-Region.svs"


def _dirs():
    import platformdirs

    return platformdirs.PlatformDirs(APP_NAME, appauthor=False)


def user_data_dir() -> Path:
    """Writable per-user data; PVDESK_HOME overrides it (tests point it at a temp folder)."""
    env = os.environ.get("PVDESK_HOME")
    return Path(env) if env else Path(_dirs().user_data_dir)


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def cache_dir() -> Path:
    env = os.environ.get("PVDESK_HOME")
    return Path(env) / "cache" if env else Path(_dirs().user_cache_dir)


def config_dir() -> Path:
    env = os.environ.get("PVDESK_HOME")
    return Path(env) / "config" if env else Path(_dirs().user_config_dir)
