"""The heavy libraries (torch, torchvision, open_clip, safetensors.torch), imported once.

Every lazy import of them in pvdesk and training goes through this module:

    from pvdesk import heavy

    torch = heavy.torch()              # torch
    open_clip = heavy.open_clip()      # torch, torchvision, open_clip (which brings timm)
    ml = heavy.ml()                    # all of them (the window's prewarm thread)

Why: two threads importing the same package graph at once can each hold a module lock the
other needs; Python then breaks the deadlock by handing one of them a half-initialised module
("cannot import name 'StochasticDepth' from partially initialized module 'torchvision.ops'",
seen on a cold ``pvdesk demo`` when the prewarm thread and the run worker both imported
torchvision). Here the first caller imports under one lock and the others wait for it, so
every caller gets complete modules. Once a library is in, the call costs a set look-up.

After one of these calls, plain ``from torch import nn`` or
``from torchvision.models import resnet50`` inside a function is safe: the package is already
complete in ``sys.modules``. Importing this module is cheap (no heavy import at import time).
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType, SimpleNamespace

# What each entry point brings in, in order. open_clip imports torchvision and timm itself;
# importing torchvision first keeps even its own import graph single-threaded.
_NEEDS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "torchvision": ("torch", "torchvision"),
    "safetensors.torch": ("torch", "safetensors", "safetensors.torch"),
    "open_clip": ("torch", "torchvision", "open_clip"),
    "timm": ("torch", "torchvision", "timm"),
    "h5py": ("h5py",),
}
ALL = ("torch", "torchvision", "safetensors", "safetensors.torch", "open_clip")

# An RLock: an import running under the lock may reach code that asks for a library again.
_lock = threading.RLock()
_done: set[str] = set()  # names imported completely under the lock (only ever grows)


def _load(names: tuple[str, ...]) -> None:
    if all(n in _done for n in names):
        return
    with _lock:
        for n in names:
            if n not in _done:
                try:
                    importlib.import_module(n)
                except (ImportError, OSError) as exc:  # a broken install, no memory to map it
                    from pvdesk.errors import PvdeskError

                    raise PvdeskError(f"cannot load {n} ({type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())[:200]})") from exc
                _done.add(n)


def _get(name: str) -> ModuleType:
    _load(_NEEDS[name])
    return sys.modules[name]


def torch() -> ModuleType:
    """The ``torch`` module, imported under the lock on first use."""
    return _get("torch")


def torchvision() -> ModuleType:
    """The ``torchvision`` module (torch first)."""
    return _get("torchvision")


def safetensors_torch() -> ModuleType:
    """``safetensors.torch`` (``load_file``, ``save_file``; torch first)."""
    return _get("safetensors.torch")


def open_clip() -> ModuleType:
    """The ``open_clip`` module (torch and torchvision first)."""
    return _get("open_clip")


def timm() -> ModuleType:
    """The ``timm`` module (torch and torchvision first)."""
    return _get("timm")


def h5py() -> ModuleType:
    """The ``h5py`` module (PatchCamelyon's HDF5 files)."""
    return _get("h5py")


def module(name: str) -> ModuleType:
    """Any module of a heavy library that the package does not import itself, e.g.
    ``heavy.module("torchvision.transforms.v2.functional")``: its library first, then it,
    both under the lock."""
    base = name.split(".", 1)[0]
    _load(_NEEDS.get(base, ("torch",)) + (name,))
    return sys.modules[name]


def ml() -> SimpleNamespace:
    """Every heavy library, as attributes ``torch``, ``torchvision``, ``open_clip``,
    ``safetensors_torch``."""
    _load(ALL)
    return SimpleNamespace(torch=sys.modules["torch"], torchvision=sys.modules["torchvision"],
                           open_clip=sys.modules["open_clip"],
                           safetensors_torch=sys.modules["safetensors.torch"])


def loaded(name: str = "torch") -> bool:
    """True when ``name`` has been imported completely through this module."""
    return name in _done
