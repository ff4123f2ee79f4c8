"""`pvdesk demo`: open the bundled sample slide in the desktop app and run the demo bundles."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="open the sample slide in the desktop app and run the demo models on it",
        description="Open the bundled sample slide (CMU-1-Small-Region, CC0) in the desktop "
        "application and run the demo bundles (demo-clip-rn50, demo-resnet50: real "
        "architectures with random weights, no download) so the whole flow is visible.")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        from pvdesk.ui.app import run_app
    except ImportError as exc:
        print(f"pvdesk: the desktop application is not available ({exc})", file=sys.stderr)
        return 2
    return run_app([], demo=True)
