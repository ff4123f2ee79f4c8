"""`pvdesk` entry point: the GUI with no verb, headless verbs otherwise.

Each verb lives in its own module under pvdesk/commands and exposes
``register(subparsers)``, which adds a parser whose ``func(args) -> int`` runs it.
A PvdeskError becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pvdesk import __version__
from pvdesk.errors import PvdeskError

# Verb modules, in the order `pvdesk --help` lists them.
COMMAND_MODULES = (
    "pvdesk.commands.info",
    "pvdesk.commands.tiles",
    "pvdesk.commands.review",
    "pvdesk.commands.models",
    "pvdesk.commands.predict",
    "pvdesk.commands.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pvdesk",
        description="Review breast histopathology slides with AI tile classifiers. "
        "With no verb (or with a PATH) the desktop application opens.",
    )
    parser.add_argument("--version", action="version", version=f"pvdesk {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _gui(argv: list[str]) -> int:
    try:
        from pvdesk.ui.app import run_app
    except ImportError as exc:  # the GUI layer is optional for headless installs
        print(f"pvdesk: the desktop application is not available ({exc})", file=sys.stderr)
        return 2
    return run_app(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    verbs = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()
    if not argv or (argv[0] not in verbs and not argv[0].startswith("-")):
        return _gui(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PvdeskError as exc:
        print(f"pvdesk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pvdesk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
