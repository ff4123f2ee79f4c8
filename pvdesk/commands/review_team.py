"""`pvdesk review merge|agreement|reviewers|settings`: team review from the command line
(several readers' stores merged, inter-reader agreement, adjudicator roles, blinded
reading)."""

from __future__ import annotations

import argparse
import json

from pvdesk.commands.common import integer, run_id_value
from pvdesk.errors import PvdeskError
from pvdesk.review.team import QUEUE_ORDERS


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len(text) > 4000:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text[:40]!r}")
    return names


def _on_off(text: str) -> bool:
    t = text.lower()
    if t not in ("on", "off", "true", "false", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {text[:20]!r}")
    return t in ("on", "true", "yes")


_resamples = integer(0, 100_000, what="resamples")
_seed = integer(0)


def register_team(verbs) -> None:
    m = verbs.add_parser(
        "merge", help="merge several reviewers' stores into one (keeps every decision)",
        description="Merge review stores (or review projects) into OUT, keeping every "
        "slide, run, tile, prediction, decision and audit row; each reviewer's decisions stay "
        "theirs. An existing OUT is merged into; merging again with the same stores changes "
        "nothing. OUT is written to a temporary file beside it and renamed in place. Two "
        "stores whose same slide id carries different slide properties (or a tile of another "
        "resolution) are refused.")
    m.add_argument("out", help="the merged store to write (.pvdb)")
    m.add_argument("stores", nargs="+", help="stores to merge")
    m.add_argument("--json", action="store_true", help="print the counts as JSON")
    m.set_defaults(func=run_merge)

    a = verbs.add_parser(
        "agreement", help="inter-reader agreement: kappa, Fleiss, per class, vs the model",
        description="Write report.md, agreement.json and confusion-matrix PNGs: pairwise "
        "Cohen's kappa (and quadratic-weighted kappa over an ordered grouping), Fleiss' kappa "
        "for three or more readers, percent and per-class agreement, reader-vs-reader "
        "confusion matrices and each reader's agreement with each model run, with bootstrap "
        "intervals over slides (at least 5 slides). Readers' first decisions are analysed "
        "(the blinded reading).")
    a.add_argument("store", help="review store file (.pvdb)")
    a.add_argument("--reviewers", type=_names, default=None, metavar="A,B,C",
                   help="readers to compare (default: every reader; adjudicators left out)")
    a.add_argument("--run", type=run_id_value, default=None, help="tiles of one model run")
    a.add_argument("--out", required=True, help="folder to write the report into")
    a.add_argument("--decisions", choices=("first", "current"), default="first",
                   help="each reader's first decision per tile (default) or the current one")
    a.add_argument("--order", type=_names, default=None, metavar="LOW,...,HIGH",
                   help="ordered categories (labels or groups) for the weighted kappa "
                   "(default: the taxonomy's groups, benign,malignant)")
    a.add_argument("--resamples", type=_resamples, default=1000,
                   help="bootstrap resamples (default %(default)s; 0: no intervals)")
    a.add_argument("--seed", type=_seed, default=0, help="bootstrap seed (default 0)")
    a.set_defaults(func=run_agreement)

    r = verbs.add_parser(
        "reviewers", help="list reviewers and roles; make one an adjudicator",
        description="List the store's reviewers with their role and how many tiles each "
        "decided; --set-role NAME=adjudicator makes NAME's decisions the consensus on the "
        "tiles readers disagree about (audited).")
    r.add_argument("store", help="review store file (.pvdb)")
    r.add_argument("--set-role", action="append", default=[], metavar="NAME=ROLE",
                   help="reader or adjudicator (repeatable)")
    r.add_argument("--reviewer", default=None,
                   help="who makes the change, in the audit trail (default: login name)")
    r.set_defaults(func=run_reviewers)

    s = verbs.add_parser(
        "settings", help="blinded reading and queue order of a review project",
        description="Show or set project settings. Blinded reading hides the model's "
        "prediction, confidence, heatmap and other reviewers' labels in the window and "
        "orders the queue without the model (random with a stored seed, or spatial).")
    s.add_argument("store", help="review store file (.pvdb)")
    s.add_argument("--blinded", type=_on_off, default=None, metavar="on|off")
    s.add_argument("--queue-order", choices=QUEUE_ORDERS, default=None)
    s.add_argument("--queue-seed", type=_seed, default=None)
    s.add_argument("--reviewer", default=None,
                   help="who makes the change, in the audit trail (default: login name)")
    s.set_defaults(func=run_settings)


def run_merge(args) -> int:
    from pvdesk.review.merge import merge_stores

    counts = merge_stores(args.out, args.stores)
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"merged {counts['stores']} stores into {args.out}: {counts['slides']} slides, "
              f"{counts['runs']} runs, {counts['tiles']} tiles, {counts['decisions']} "
              f"decisions, {counts['audit_rows']} audit rows")
    return 0


def run_agreement(args) -> int:
    from pathlib import Path

    from pvdesk.review.agreement_analysis import analyse
    from pvdesk.review.agreement_report import write_report
    from pvdesk.review.store import ReviewStore

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PvdeskError(f"{out}: exists and is not a folder")
    with ReviewStore(args.store, readonly=True) as store:
        result = analyse(store, args.reviewers, args.run, args.decisions, args.order,
                         args.resamples, args.seed)
    files = write_report(result, args.out)
    for p in result["pairs"]:
        print(f"{p['a']} vs {p['b']}: kappa {_fmt(p['kappa'])} on {p['n_text']}")
    if result["fleiss"]:
        f = result["fleiss"]
        print(f"Fleiss' kappa {_fmt(f['kappa'])} on {f['n_text']}")
    if len(result["reviewers"]) < 2:
        print(f"note: {len(result['reviewers'])} reader(s); agreement needs two")
    print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


def _fmt(v) -> str:
    return "undefined" if v is None else f"{v:.3f}"


def run_reviewers(args) -> int:
    from pvdesk.review.store import ReviewStore, default_reviewer
    from pvdesk.review.team import consensus_of

    changes = []
    for item in args.set_role:
        name, sep, role = item.rpartition("=")
        if not sep or not name.strip():
            raise PvdeskError(f"--set-role {item[:40]!r}: expected NAME=reader or "
                              "NAME=adjudicator")
        changes.append((name, role.strip()))
    with ReviewStore(args.store, reviewer=args.reviewer or default_reviewer(), create=False,
                     readonly=not changes) as store:
        for name, role in changes:
            store.set_role(name, role)
        by = store.decisions_by_reviewer()
        roles = store.roles()
        for name, role in roles.items():
            print(f"{name}\t{role}\t{len(by.get(name, {}))} tiles")
        cons, disputed = consensus_of(by, roles)
        print(f"consensus: {len(cons)} tiles, disputed: {len(disputed)}")
    return 0


def run_settings(args) -> int:
    from pvdesk.review.store import ReviewStore, default_reviewer

    changes = {k: v for k, v in (("blinded", args.blinded), ("queue_order", args.queue_order),
                                 ("queue_seed", args.queue_seed)) if v is not None}
    with ReviewStore(args.store, reviewer=args.reviewer or default_reviewer(), create=False,
                     readonly=not changes) as store:
        for key, value in changes.items():
            store.set_setting(key, value)
        for key, value in store.settings().items():
            print(f"{key}\t{json.dumps(value)}")
    return 0
