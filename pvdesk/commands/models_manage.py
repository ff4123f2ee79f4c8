"""`pvdesk models add | import | check`: create a bundle from a backbone spec, bring a bundle
folder into the user's models folder, and prove a bundle loads and runs here."""

from __future__ import annotations

import argparse
import time

from pvdesk.commands.common import tile_um_value


def _classes(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two class names like "
                                         f"tumor,normal, got {text!r}")
    return names


def register_verbs(parent) -> None:
    sub = parent.add_subparsers(dest="models_verb", metavar="ACTION")
    p = sub.add_parser("add", help="create a bundle from a backbone spec in your models folder",
                       description="Create a model bundle in your models folder from a "
                       "backbone spec: timm:NAME, timm:hf-hub:ORG/REPO, hf-hub:ORG/REPO, "
                       "local-dir:PATH, MODEL:TAG (open_clip), open_clip:MODEL with "
                       "--weights FILE, torchvision:resnet50. Input size and normalisation "
                       "come from the model's own config; the manifest records the spec, "
                       "the sha256 and size of the weights and the library versions.")
    p.add_argument("name", metavar="NAME", help="the new bundle's name")
    p.add_argument("--backbone", required=True, metavar="SPEC", help="the backbone spec")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a local weights file (.safetensors, .pt, .pth, .bin) for the backbone")
    p.add_argument("--kind", default=None, choices=("clip-zeroshot", "clip-linear", "clip-mlp",
                                                    "resnet50"),
                   help="default: clip-zeroshot for CLIP backbones, clip-linear for timm "
                        "encoders (with --head), resnet50 for torchvision")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--classes", type=_classes, default=None, metavar="A,B,...",
                       help="class names, 2 to 1000 lowercase names (default: the 8 BreakHis "
                            "subtypes); review keys 1-9 go to the first nine in order, "
                            "classes past the ninth have no key (label them from the Review "
                            "menu)")
    which.add_argument("--taxonomy", default=None, metavar="FILE",
                       help="a taxonomy JSON file (classes with display names, colours, keys); "
                            "copied into the bundle")
    p.add_argument("--prompts", default=None, metavar="FILE",
                   help="zero-shot prompt set JSON ({\"templates\": [...], \"classes\": "
                        "{...}}); copied into the bundle")
    p.add_argument("--head", default=None, metavar="FILE",
                   help="head weights (head.weight, head.bias) for clip-linear/clip-mlp")
    p.add_argument("--tile-um", type=tile_um_value, default=None, metavar="UM",
                   help="field of view of a tile in micrometres (default 112)")
    p.add_argument("--overwrite", action="store_true", help="replace a bundle of that name")
    p.set_defaults(func=run_add)

    p = sub.add_parser("import", help="validate a bundle folder and copy it into your models "
                       "folder")
    p.add_argument("folder", metavar="FOLDER", help="a bundle folder (with manifest.json)")
    p.add_argument("--name", default=None, help="import under another name")
    p.add_argument("--overwrite", action="store_true", help="replace a bundle of that name")
    p.set_defaults(func=run_import)

    p = sub.add_parser("check", help="load a bundle, run one tile of the sample slide, print "
                       "class count, weights sha256 and tiles/s")
    p.add_argument("model", metavar="NAME", help="bundle name or folder")
    p.add_argument("--dir", action="append", default=[], metavar="DIR",
                   help="also look in this folder for bundles; repeatable")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="a local backbone weights file (overrides the manifest's)")
    p.add_argument("--seconds", type=float, default=2.0,
                   help="how long to time the speed (default 2 s)")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="instead of running the bundle: count the rows of this predictions "
                        "CSV made by exactly its weights (model_sha256), by other weights, "
                        "and unknown; exit 0 only when every row matches")
    p.set_defaults(func=run_check)


def run_add(args) -> int:
    from pvdesk.models.bundle_admin import add_bundle

    b = add_bundle(args.name, args.backbone, weights=args.weights, kind=args.kind,
                   classes=args.classes, taxonomy=args.taxonomy, prompts=args.prompts,
                   head=args.head, tile_um=args.tile_um, overwrite=args.overwrite)
    ok, why = b.weights_status()
    print(f"{b.name}: {b.kind} bundle written to {b.path}")
    print(f"    classes: {len(b.classes)} ({', '.join(b.classes)})")
    print(f"    input {b.input_size} px, mean {_fmt(b.mean)}, std {_fmt(b.std)} "
          f"({b.provenance.get('preprocess_from')})")
    print(f"    weights here: {'yes' if ok else 'no'} - {why}")
    print(f"    check it: pvdesk models check {b.name}")
    return 0


def run_import(args) -> int:
    from pvdesk.models.bundle_admin import import_bundle

    b = import_bundle(args.folder, args.name, overwrite=args.overwrite)
    ok, why = b.weights_status()
    print(f"{b.name}: imported into {b.path} ({b.kind}, {len(b.classes)} classes, {b.status})")
    print(f"    weights here: {'yes' if ok else 'no'} - {why}")
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _fmt(v) -> str:
    return "(" + ", ".join(f"{x:.3g}" for x in v) + ")"


def sample_tile(bundle):
    """(uint8 (1, 3, S, S) tensor, where) of one tissue tile of the bundled sample slide."""
    import numpy as np

    from pvdesk import heavy
    from pvdesk.paths import sample_slide
    from pvdesk.slides import open_source
    from pvdesk.tiling import make_grid

    torch = heavy.torch()
    src = open_source(sample_slide())
    try:
        grid = make_grid(src, bundle.tile_um, out_size=bundle.input_size)
        if not grid.tiles:
            grid = make_grid(src, bundle.tile_um, out_size=bundle.input_size, min_tissue=0.0)
        tile = grid.tiles[len(grid.tiles) // 2]
        img = src.read_tile(tile, grid).convert("RGB").resize(
            (bundle.input_size, bundle.input_size))
    finally:
        src.close()
    arr = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()
    return torch.from_numpy(arr)[None], f"{sample_slide().name} tile at ({tile.x}, {tile.y})"


def run_check(args) -> int:
    from pvdesk.models import resolve_bundle
    from pvdesk.models.bundle_admin import weights_files
    from pvdesk.models.file_hash import sha256_of

    b = resolve_bundle(args.model, args.dir)
    if args.csv:
        return check_csv(b, args.csv)
    files = weights_files(b)  # found before loading: a missing file fails in load below
    t0 = time.perf_counter()
    clf = b.load(args.device, args.precision, weights=args.weights)
    load_s = time.perf_counter() - t0
    x, where = sample_tile(b)
    out = clf.predict(x)
    probs = out.probs[0].tolist()
    top = max(range(len(probs)), key=probs.__getitem__)
    batch = x.repeat(8, 1, 1, 1)
    clf.predict(batch)  # warm-up
    n, t0 = 0, time.perf_counter()
    while True:
        clf.predict(batch)
        n += len(batch)
        el = time.perf_counter() - t0
        if el >= max(0.05, args.seconds) or n >= 100_000:
            break
    print(f"{b.name} {b.version} [{b.kind}]: loads and runs on {clf.device} "
          f"({clf.effective_precision}) in {load_s:.1f} s; {b.status}")
    print(f"    classes: {len(b.classes)} ({', '.join(b.classes)})")
    if b.backbone.get("spec"):
        print(f"    backbone: {b.backbone['spec']}")
    for role, path, size in files:
        print(f"    {role} weights: {path} sha256 {sha256_of(path)} ({_size(size)})")
    if not files:
        print("    weights: none read from a file (random initialisation)")
    print(f"    one tile ({where}): {b.classes[top]} p={probs[top]:.3f}")
    print(f"    speed: {n / el:.1f} tiles/s (batches of {len(batch)} at {b.input_size} px, "
          f"{el:.1f} s)")
    return 0


def check_csv(bundle, path) -> int:
    """`models check NAME --csv FILE`: 0 when every row was made by the bundle's weights."""
    from pvdesk.export.model_match import match_csv, match_text
    from pvdesk.models.file_hash import verify

    verify(bundle, None)  # its weights file is the one its manifest records (ModelError)
    m = match_csv(bundle, path)
    for line in match_text(bundle, path, m):
        print(line)
    return 0 if m.all_match else 1
