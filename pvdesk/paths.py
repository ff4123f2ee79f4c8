"""Where things live: the bundled resources and the user's folders (platformdirs)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

APP_NAME = "pvdesk"


def resources_dir() -> Path:
    """The bundled resources (model manifests, prompts, the sample slide, the icon): the
    ``pvdesk.resources`` package, found with importlib.resources so that a source checkout,
    an installed wheel and a PyInstaller build all read the same files.
    ``PVDESK_RESOURCES`` names another folder instead."""
    env = os.environ.get("PVDESK_RESOURCES")
    return Path(env) if env else _package_resources()


@functools.lru_cache(maxsize=1)
def _package_resources() -> Path:
    from importlib.resources import files

    root = files("pvdesk.resources")
    if isinstance(root, Path):
        return root
    # A zipped install (zipimport) has no folder to hand to OpenSlide or safetensors.
    raise RuntimeError(f"pvdesk's resources are inside an archive ({root}); install pvdesk "
                       "unzipped (pip does) or set PVDESK_RESOURCES to a copy of them")


def sample_slide() -> Path:
    return resources_dir() / "samples" / "CMU-1-Small-Region.svs"


def icon_path() -> Path:
    return resources_dir() / "icons" / "pvdesk.svg"


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
