"""`pvdesk selftest [PATH]` (not in --help): start the window, open PATH (default: the sample
slide), close it, and print how long each step took, as JSON.

For packaging checks (packaging/check_frozen.sh runs it in the frozen app with
QT_QPA_PLATFORM=offscreen) and for measuring start-up. Exit status 0 when the slide opened,
2 when the window could not start or the slide not open (the message is printed, never shown
in a dialog that would wait for a click).
"""

from __future__ import annotations

import json
import sys
import time

from pvdesk.commands.common import real
from pvdesk.errors import PvdeskError


def register(sub) -> None:
    p = sub.add_parser("selftest",  # no help=: not listed by --help
                       description="Open PATH in the window, close it, print the timings.")
    p.add_argument("path", nargs="?", help="slide to open (default: the bundled sample)")
    p.add_argument("--timeout", type=real(0.1, 86400.0), default=120.0,
                   help="give up after this many seconds (default %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    t0 = time.perf_counter()
    from pvdesk.paths import sample_slide
    from pvdesk.qt_check import gui_problem

    problem = gui_problem()
    if problem:
        raise PvdeskError(problem)
    path = args.path or str(sample_slide())
    from pvdesk.ui.selftest import open_and_time  # the window lives in pvdesk.ui

    result = open_and_time(path, args.timeout, t0)
    result["closed_s"] = time.perf_counter() - t0
    result["frozen"] = bool(getattr(sys, "frozen", False))
    print(json.dumps(result, indent=2))
    if "error" in result or "opened_s" not in result:
        raise PvdeskError(f"{path}: the window did not open it ({result.get('error')})")
    return 0
