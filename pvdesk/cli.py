"""`pvdesk` entry point: the GUI with no verb (or a path), headless verbs otherwise.

Each verb lives in its own module under pvdesk/commands and exposes
``register(subparsers)``, which adds a parser whose ``func(args) -> int`` runs it.
A PvdeskError becomes one line on stderr and exit status 2, never a traceback. A first
word that is neither a verb nor a path is an error (exit 2, with the closest verb as a
suggestion), never a window.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from pathlib import Path

from pvdesk import __version__
from pvdesk.errors import PvdeskError

# Verb modules, in the order `pvdesk --help` lists them.
COMMAND_MODULES = (
    "pvdesk.commands.info",
    "pvdesk.commands.tiles",
    "pvdesk.commands.review",
    "pvdesk.commands.models",
    "pvdesk.commands.predict",
    "pvdesk.commands.similar",
    "pvdesk.commands.query",
    "pvdesk.commands.explain",
    "pvdesk.commands.demo",
    "pvdesk.commands.selftest",  # hidden: packaging checks
)
HIDDEN_VERBS = ("selftest",)

_INVALID_CHOICE = re.compile(r"invalid choice: '?([^'\s]*)'? \(choose from (.*)\)")


def suggestion(word: str, choices) -> str | None:
    """The closest of ``choices`` to a mistyped ``word``, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:  # a prefix ("pred") is a fair guess too
        close = [c for c in choices if c.startswith(word)][:1] if len(word) >= 2 else []
    return close[0] if close else None


class SuggestingParser(argparse.ArgumentParser):
    """argparse that adds "did you mean ...?" to an invalid choice (verbs, sub-verbs) and
    reports a usage error in one line (exit status 2), pointing at --help for the usage."""

    def error(self, message: str):
        m = _INVALID_CHOICE.search(message)
        if m:
            choices = [c.strip().strip("'") for c in m.group(2).split(",")]
            best = suggestion(m.group(1), choices)
            if best:
                message += f"; did you mean '{best}'?"
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="pvdesk",
        description="Review breast histopathology slides with AI tile classifiers. "
        "With no verb (or with a PATH) the desktop application opens.",
    )
    parser.add_argument("--version", action="version", version=f"pvdesk {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def verbs_of(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def unknown_word(word: str, verbs: list[str]) -> str | None:
    """The error line for a first word that is neither a verb nor a path; None when it is a
    path (existing or not, e.g. ``x.svs``, ``dir/``): the window opens it or says in a
    dialog what is wrong, which a desktop launcher shows where it would hide stderr."""
    if Path(word).expanduser().exists() or any(c in word for c in "/\\.~:"):
        return None
    best = suggestion(word, [v for v in verbs if v not in HIDDEN_VERBS])
    if best:
        return f"unknown verb '{word}'; did you mean '{best}'? (pvdesk --help lists the verbs)"
    shown = [v for v in verbs if v not in HIDDEN_VERBS]
    return (f"unknown verb '{word}' (verbs: {', '.join(shown)}; or give a slide, image or "
            "folder to open it in the window)")


def _gui(argv: list[str]) -> int:
    from pvdesk.qt_check import gui_problem

    problem = gui_problem()
    if problem:
        print(f"pvdesk: {problem}", file=sys.stderr)
        return 2
    try:
        from pvdesk.ui.app import run_app
    except ImportError as exc:  # the GUI layer is optional for headless installs
        print(f"pvdesk: the desktop application is not available ({exc})", file=sys.stderr)
        return 2
    return run_app(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    verbs = verbs_of(parser)
    if not argv:
        return _gui(argv)
    if argv[0] == "--reviewer" or argv[0].startswith("--reviewer="):  # the window's option
        return _gui(argv)
    if argv[0] not in verbs and not argv[0].startswith("-"):
        error = unknown_word(argv[0], verbs)
        if error:
            print(f"pvdesk: error: {error}", file=sys.stderr)
            return 2
        return _gui(argv)
    args = parser.parse_args(argv)
    if args.verb is None:  # options only (e.g. a Qt option): nothing headless to do
        parser.print_usage(sys.stderr)
        print("pvdesk: error: give a verb, or a path to open in the window", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except PvdeskError as exc:
        print(f"pvdesk: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("pvdesk: error: out of memory (the input is too large for this machine, or "
              "a limit on memory is set)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pvdesk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
