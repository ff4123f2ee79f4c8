"""`pvdesk tiles PATH --preview OUT.png`: draw the tissue mask and the kept tile grid."""

from __future__ import annotations

from pathlib import Path

from pvdesk.commands.common import add_grid_arguments
from pvdesk.errors import PvdeskError
from pvdesk.preview import render_preview
from pvdesk.progress import TerminalProgress
from pvdesk.slides import PyramidSource, open_source
from pvdesk.tiling import make_grid


def register(sub) -> None:
    p = sub.add_parser("tiles", help="preview the tissue mask and tile grid of a slide",
                       description="Compute the tile grid and draw it over the thumbnail.")
    p.add_argument("path", help="slide file or image")
    p.add_argument("--preview", required=True, metavar="OUT.png", help="where to write the PNG")
    p.add_argument("--preview-size", type=int, default=1600,
                   help="longest side of the preview in px (default %(default)s)")
    add_grid_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.preview)
    if not out.parent.is_dir():
        raise PvdeskError(f"{out}: the folder {out.parent} does not exist")
    with open_source(args.path, mpp=args.mpp) as src:
        if not isinstance(src, PyramidSource):
            raise PvdeskError(f"{src.path}: a patch folder has no tile grid (each image is a tile)")
        with TerminalProgress("thumbnail", "rows") as bar:
            grid = make_grid(src, args.tile_um, args.size, args.overlap, args.min_tissue,
                             progress=bar)
            thumb = src.thumbnail(args.preview_size, progress=bar)
        render_preview(thumb, grid, src.dimensions).save(out)
    print(f"{out}: {grid.describe()}")
    for w in grid.warnings:
        print(f"note: {w}")
    return 0
