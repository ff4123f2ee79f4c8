"""`pvdesk query STORE --run R "phrase" [...] --out heat.png`: text search over a slide.

The phrase goes through the run's CLIP bundle text tower (encoded as zero-shot prompts are)
and is compared (cosine) with the image embeddings the run stored (`predict --embeddings`):
a heatmap PNG per phrase and the best tiles, with no re-run of the model. Several phrases
also give each tile's ad-hoc zero-shot class among them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pvdesk.commands.common import integer, run_id_value
from pvdesk.errors import PvdeskError


def register(sub) -> None:
    p = sub.add_parser(
        "query", help="search a slide in words: a phrase against a CLIP run's stored embeddings",
        description="Turn phrases into cosine-similarity heatmaps over a slide from the image "
        "embeddings a CLIP run stored (predict --embeddings), and list the best tiles.")
    p.add_argument("store", help="review store file (.pvdb)")
    p.add_argument("phrases", nargs="+", metavar="PHRASE", help="e.g. \"mucin pools\"")
    p.add_argument("--run", type=run_id_value, required=True, help="model run id (a CLIP bundle)")
    p.add_argument("--out", required=True, metavar="FILE.png",
                   help="heatmap PNG (several phrases: FILE-1.png, FILE-2.png, ...)")
    p.add_argument("--slide", default=None, help="slide id, when the run covers several")
    p.add_argument("--top", type=integer(1, 10000), default=10,
                   help="best tiles listed per phrase (default %(default)s)")
    p.add_argument("--model", default=None, metavar="NAME_OR_FOLDER",
                   help="the bundle to encode with (default: the run's bundle by name)")
    p.add_argument("--weights", default=None, help="local backbone weights file")
    p.add_argument("--save-prompts", default=None, metavar="FILE.json",
                   help="save the phrases as a prompt set (give each as CLASS=phrase, e.g. "
                   "\"mucinous_carcinoma=mucin pools\"; the same class may appear twice)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def split_phrases(raw) -> tuple[list[str | None], list[str]]:
    """("CLASS=phrase" or "phrase") -> (class or None per phrase, the phrases)."""
    from pvdesk.taxonomy import NAME_RE, normalise_name

    labels, phrases = [], []
    for text in raw:
        label, sep, rest = text.partition("=")
        label = label.strip() if sep else None
        phrase = " ".join((rest if sep else text).split())
        if not phrase or len(phrase) > 300:
            raise PvdeskError(f"{text[:60]!r}: a phrase must be 1 to 300 characters")
        if label is not None:
            try:  # a BreakHis name (codes, aliases) or a custom class's lowercase name
                label = normalise_name(label)
            except KeyError:
                if not NAME_RE.fullmatch(label):
                    raise PvdeskError(f"{text[:60]!r}: {label!r} before '=' is neither a "
                                      "BreakHis class nor a lowercase class name") from None
        labels.append(label)
        phrases.append(phrase)
    return labels, phrases


def save_prompt_set(path, labels, phrases) -> Path:
    """A prompt set (as in pvdesk/resources/prompts) with the phrases under their classes."""
    from pvdesk.export.atomic import atomic_write

    if any(label is None for label in labels):
        raise PvdeskError("--save-prompts: give every phrase as CLASS=phrase (e.g. "
                          "\"mucinous_carcinoma=mucin pools\")")
    classes: dict[str, list[str]] = {}
    for label, phrase in zip(labels, phrases, strict=True):
        classes.setdefault(label, []).append(phrase)
    path = Path(path)
    obj = {"name": path.stem, "description": "Saved by pvdesk query from ad-hoc phrases.",
           "templates": ["{}"], "classes": classes}
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
    return path


def _outputs(out: Path, n: int) -> list[Path]:
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix or '.png'}") for i in range(n)]


def run(args) -> int:
    import numpy as np

    from pvdesk.clock import now_iso
    from pvdesk.models import resolve_bundle
    from pvdesk.review.store import ReviewStore
    from pvdesk.text_search import (
        load_text_encoder,
        query_run,
        render_png,
        slide_background,
    )

    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise PvdeskError(f"{out}: is a folder; give a PNG file name")
    if not out.parent.is_dir() and str(out.parent):
        raise PvdeskError(f"{out}: the folder {out.parent} does not exist")
    labels, phrases = split_phrases(args.phrases)
    with ReviewStore(args.store, readonly=True) as store:
        run_info = store.run(args.run)
        bundle = resolve_bundle(args.model or run_info.bundle_name)
        if args.save_prompts:  # once the store, the run and the model are known to be good
            save_prompt_set(args.save_prompts, labels, phrases)
        if bundle.manifest_hash != run_info.manifest_hash and args.model is None:
            print(f"note: bundle {bundle.name}'s manifest differs from the one run {args.run} "
                  "was made with", file=sys.stderr)
        slide_id = args.slide
        if slide_id is None:
            ids = store.slide_ids(run_id=args.run, with_coords=True)
            if len(ids) > 1:
                raise PvdeskError(f"run {args.run} covers {len(ids)} slides; choose one with "
                                  f"--slide ({', '.join(ids[:5])})")
            slide_id = ids[0] if ids else None
        enc = load_text_encoder(bundle, args.weights)
        vectors = enc.embed(phrases)
        result = query_run(store, args.run, vectors, phrases, slide_id)
        thumb, size = slide_background(store, slide_id) if slide_id else (None, None)
    recs = list(result.records.values())
    if size is None:
        size = (max(r.tile_x + r.tile_w for r in recs if r.tile_x is not None),
                max(r.tile_y + r.tile_h for r in recs if r.tile_y is not None))
    stride = int(run_info.settings.get("stride") or recs[0].tile_w)
    meta = {"bundle": f"{bundle.name}@{bundle.version}", "trained": str(bool(bundle.trained)),
            "run": str(args.run), "store": str(Path(args.store).resolve()),
            "slide_id": str(slide_id), "date": now_iso(), "software": "pvdesk query"}
    written = [render_png(path, result, i, stride=stride, size=size, background=thumb,
                          metadata=meta) for i, path in enumerate(_outputs(out, len(phrases)))]
    report = {"store": str(args.store), "run": args.run, "bundle": meta["bundle"],
              "trained": bool(bundle.trained), "tiles": int(len(result.tile_ids)),
              "phrases": []}
    probs = result.probabilities(enc.logit_scale) if len(phrases) > 1 else None
    for i, phrase in enumerate(phrases):
        best = [{"tile_x": r.tile_x, "tile_y": r.tile_y, "tile_w": r.tile_w, "tile_h": r.tile_h,
                 "cosine": round(c, 6), "predicted": r.predicted, "review_label": r.label}
                for r, c in result.best(i, args.top)]
        entry = {"phrase": phrase, "class": labels[i], "png": str(written[i]), "best": best,
                 "cosine_min": float(np.min(result.cosine[:, i])),
                 "cosine_max": float(np.max(result.cosine[:, i]))}
        if probs is not None:
            entry["tiles_most_like_this_phrase"] = int((probs.argmax(1) == i).sum())
        report["phrases"].append(entry)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    if not bundle.trained:
        print(f"WARNING: {bundle.name} is UNTRAINED (random weights): the similarities are "
              "meaningless, for testing only", file=sys.stderr)
    for e in report["phrases"]:
        share = (f"; {e['tiles_most_like_this_phrase']} of {report['tiles']} tiles closer to "
                 "it than to the other phrases" if "tiles_most_like_this_phrase" in e else "")
        print(f"\"{e['phrase']}\": {e['png']} (cosine {e['cosine_min']:.3f}..{e['cosine_max']:.3f}"
              f" over {report['tiles']} tiles{share})")
        for rank, b in enumerate(e["best"], 1):
            print(f"  {rank:3d}  {b['tile_x']},{b['tile_y']}  cos {b['cosine']:.4f}  "
                  f"{b['predicted']}")
    return 0
