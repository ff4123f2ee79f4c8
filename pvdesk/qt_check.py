"""Before the window starts: can Qt open a window here at all?

Qt 6.5+ on Linux needs system libraries for its X11 (xcb) platform plugin that the PySide6
wheels do not bundle (libxcb-cursor0 above all). Without them Qt prints a long message and
aborts the process. This module checks first, without importing Qt, and returns one line
that names what to install. Qt-free: it only asks the dynamic loader.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# What Qt's xcb platform plugin links against beyond what PySide6 ships, with the
# Debian/Ubuntu package that provides each (the README lists the Fedora names too).
XCB_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libxkbcommon.so.0", "libxkbcommon0"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libEGL.so.1", "libegl1"),
    ("libGL.so.1", "libgl1"),
    ("libfontconfig.so.1", "libfontconfig1"),
)


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will pick its X11 platform plugin with this environment."""
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        # "wayland;xcb" tries wayland first; only a list that starts with xcb needs xcb.
        return platform.split(";")[0].split(":")[0] == "xcb"
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


def missing_xcb_libraries(loadable: Callable[[str], bool] = _loadable
                          ) -> list[tuple[str, str]]:
    return [(so, pkg) for so, pkg in XCB_LIBRARIES if not loadable(so)]


def gui_problem(env: Mapping[str, str] | None = None, platform: str | None = None,
                loadable: Callable[[str], bool] = _loadable) -> str | None:
    """One line saying why the window cannot start here, or None when it can (as far as
    can be known without starting Qt)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or not uses_xcb(env):
        return None
    if not env.get("DISPLAY") and not env.get("QT_QPA_PLATFORM"):
        return ("the window cannot start: no display (DISPLAY is not set); the headless verbs "
                "work without one (pvdesk --help), or set QT_QPA_PLATFORM=offscreen")
    missing = missing_xcb_libraries(loadable)
    if missing:
        names = ", ".join(so for so, _ in missing)
        pkgs = " ".join(pkg for _, pkg in missing)
        return (f"the window cannot start: Qt's X11 platform needs {names}, missing on this "
                f"system; install {pkgs} (Debian/Ubuntu: sudo apt install {pkgs}); the "
                "headless verbs work without them (pvdesk --help)")
    return None
