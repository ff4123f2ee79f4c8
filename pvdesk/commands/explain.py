"""`pvdesk explain SLIDE --model M (--tile X,Y | --top N) [--class C] --out DIR`: Grad-CAM.

Per tile: DIR/<x>_<y>-tile.png (the tile as the network saw it), -map.png (the Grad-CAM
map, 0..255) and -blend.png (the map over the tile), each carrying the bundle, class, date
and tile in its PNG metadata. ``--top N`` classifies the slide's tissue tiles first and
explains the N most confident tiles of each predicted class, plus contact_sheet.png.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pvdesk.commands.common import add_grid_arguments, integer
from pvdesk.commands.similar import tile_xy
from pvdesk.errors import PvdeskError


def register(sub) -> None:
    p = sub.add_parser(
        "explain", help="Grad-CAM maps: what a model looked at in a tile",
        description="Grad-CAM (pytorch-grad-cam) for one tile (--tile X,Y) or for the N most "
        "confident tiles of each class (--top N), written as tile, map and blend PNGs.")
    p.add_argument("slide", metavar="SLIDE", help="slide file or image")
    p.add_argument("--model", required=True, metavar="NAME_OR_FOLDER", help="model bundle")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--tile", type=tile_xy, metavar="X,Y",
                       help="the tile at (or containing) this level-0 point")
    which.add_argument("--top", type=integer(1, 100), metavar="N",
                       help="the N most confident tiles per predicted class")
    p.add_argument("--class", dest="klass", default=None, metavar="C",
                   help="explain this class (default: the predicted one)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    p.add_argument("--weights", default=None, help="local backbone weights file")
    add_grid_arguments(p, tile_um_default=None, with_size=False)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def _tile_at(grid, x: int, y: int):
    from pvdesk.slides.base import Tile

    inside = [t for t in grid.tiles if t.x <= x < t.x + t.w and t.y <= y < t.y + t.h]
    if inside:
        return min(inside, key=lambda t: (t.x + t.w / 2 - x) ** 2 + (t.y + t.h / 2 - y) ** 2)
    side = int(grid.side)
    return Tile(index=-1, x=int(x), y=int(y), w=side, h=side, tissue=0.0)


def run(args) -> int:
    from pvdesk.explain import Explainer, contact_sheet, save_png, write_explanation
    from pvdesk.export.atomic import make_folder
    from pvdesk.models import pick_device, resolve_bundle
    from pvdesk.slides import open_source
    from pvdesk.tiling import make_grid

    if not Path(args.slide).expanduser().exists():
        raise PvdeskError(f"{args.slide}: no such file")
    bundle = resolve_bundle(args.model)
    results = []
    with open_source(args.slide, mpp=args.mpp) as src:
        if src.kind == "folder":
            raise PvdeskError(f"{args.slide}: a patch folder; explain takes a slide or image")
        tile_um = args.tile_um or bundle.tile_um
        grid = make_grid(src, tile_um, bundle.input_size, args.overlap, args.min_tissue)
        out = make_folder(args.out)  # only once the slide and its grid are known to be good
        t0 = time.perf_counter()
        ex = Explainer(bundle, device=pick_device(args.device), weights=args.weights)
        load_s = time.perf_counter() - t0
        if not bundle.trained:
            print(f"WARNING: {bundle.name} is UNTRAINED (random weights): its maps are "
                  "meaningless, for testing only", file=sys.stderr)
        if args.klass is not None:
            ex.class_index(args.klass)  # an unknown class fails before any work
        extra = {"slide": str(Path(args.slide).resolve())}
        if args.tile is not None:
            width, height = (int(v) for v in src.dimensions)
            if not (args.tile[0] < width and args.tile[1] < height):
                raise PvdeskError(f"{args.slide}: --tile {args.tile[0]},{args.tile[1]} is "
                                  f"outside the slide ({width} x {height} px)")
            tile = _tile_at(grid, *args.tile)
            e = ex.explain(src.read_tile(tile, grid), args.klass)
            files = write_explanation(e, out, f"{tile.x}_{tile.y}",
                                      {**extra, "tile": f"{tile.x},{tile.y},{tile.w},{tile.h}"})
            results.append((tile, e, files))
        else:
            results = _top(args, src, grid, ex, out, extra)
            rows: dict[str, list] = {}
            for tile, e, _ in results:
                rows.setdefault(e.meta["row"], []).append(
                    (e, f"{tile.x},{tile.y} p={e.probs[e.class_index]:.2f}"))
            meta = {"bundle": f"{bundle.name}@{bundle.version}", "trained": str(bundle.trained),
                    "method": "Grad-CAM (pytorch-grad-cam)", "top": str(args.top), **extra,
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            save_png(contact_sheet(rows), out / "contact_sheet.png", meta)
    per_tile = [e.seconds for _, e, _ in results]
    report = {"model": f"{bundle.name}@{bundle.version}", "trained": bool(bundle.trained),
              "out": str(out), "load_s": round(load_s, 3), "layer": ex.layer_name,
              "seconds_per_tile": round(sum(per_tile) / len(per_tile), 3) if per_tile else None,
              "tiles": [{"tile": [t.x, t.y, t.w, t.h], "class": e.class_name,
                         "predicted": e.predicted, "p": float(e.probs[e.class_index]),
                         "seconds": round(e.seconds, 3), "files": [str(f) for f in files]}
                        for t, e, files in results]}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for t in report["tiles"]:
        print(f"{t['tile'][0]},{t['tile'][1]}: {t['class']} (p {t['p']:.2f}; predicted "
              f"{t['predicted']}) {t['seconds']:.2f} s -> {Path(t['files'][2]).name}")
    print(f"{len(results)} tile(s) explained in {out}; model load {load_s:.1f} s, "
          f"{report['seconds_per_tile'] or 0:.2f} s per tile on {ex.clf.device}")
    return 0


def _top(args, src, grid, ex, out, extra):
    """Classify the grid, then explain the ``args.top`` most confident tiles per class."""
    import numpy as np

    from pvdesk.explain import write_explanation
    from pvdesk.inference import InferenceEngine
    from pvdesk.progress import TerminalProgress

    probs, tiles = [], []
    with TerminalProgress("classifying", "tile") as bar:
        engine = InferenceEngine(src, grid, {"m": ex.clf}, batch_size=16, workers=2,
                                 embeddings=False, progress=lambda p: bar(p.done, p.total))
        for batch in engine.run():
            ok = batch.readable
            probs.append(batch.probs["m"][ok])
            tiles.extend(t for t, k in zip(batch.tiles, ok, strict=True) if k)
    if not tiles:
        raise PvdeskError(f"{args.slide}: no readable tissue tiles to explain")
    p = np.concatenate(probs)
    best = p.argmax(1)
    want = None if args.klass is None else ex.class_index(args.klass)
    results = []
    for c, name in enumerate(ex.bundle.classes):
        rows = np.flatnonzero(best == c)
        if want is not None and c != want:
            continue
        if want is not None:
            rows = np.arange(len(tiles))  # the N tiles most confident in the chosen class
        for i in rows[np.argsort(-p[rows, c], kind="stable")][:args.top]:
            tile = tiles[int(i)]
            e = ex.explain(src.read_tile(tile, grid), args.klass)
            e.meta["row"] = name
            files = write_explanation(e, out, f"{name}-{tile.x}_{tile.y}",
                                      {**extra, "tile": f"{tile.x},{tile.y},{tile.w},{tile.h}"})
            results.append((tile, e, files))
    return results
