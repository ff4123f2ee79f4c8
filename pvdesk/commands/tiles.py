"""`pvdesk tiles PATH --preview OUT.png`: draw the tissue mask and the kept tile grid."""

from __future__ import annotations

from pvdesk.commands.common import PREVIEW_RANGE, add_grid_arguments, preview_size_value
from pvdesk.errors import PvdeskError
from pvdesk.export.atomic import check_output_file, image_format, save_image
from pvdesk.preview import render_preview
from pvdesk.progress import TerminalProgress
from pvdesk.slides import PyramidSource, open_source
from pvdesk.tiling import make_grid


def register(sub) -> None:
    p = sub.add_parser("tiles", help="preview the tissue mask and tile grid of a slide",
                       description="Compute the tile grid and draw it over the thumbnail: "
                       "tissue green, kept tiles blue, fragments dropped as too small "
                       "magenta, unreadable (unknown) parts grey-hatched with the tiles "
                       "overlapping them in orange.")
    p.add_argument("path", help="slide file or image")
    p.add_argument("--preview", required=True, metavar="OUT.png",
                   help="where to write the image (.png, .jpg or .tif; written atomically)")
    p.add_argument("--preview-size", type=preview_size_value, default=1600,
                   help=f"longest side of the preview in px, {PREVIEW_RANGE[0]} to "
                   f"{PREVIEW_RANGE[1]} (default %(default)s)")
    add_grid_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    # The output is checked before the slide is opened: a bad name costs nothing.
    out = check_output_file(args.preview)
    fmt = image_format(out)
    with open_source(args.path, mpp=args.mpp) as src:
        if not isinstance(src, PyramidSource):
            raise PvdeskError(f"{src.path}: a patch folder has no tile grid (each image is a tile)")
        with TerminalProgress("thumbnail", "rows") as bar:
            grid = make_grid(src, args.tile_um, args.size, args.overlap, args.min_tissue,
                             progress=bar)
            thumb = src.thumbnail(args.preview_size, progress=bar)
        save_image(render_preview(thumb, grid, src.dimensions), out, fmt)
    print(f"{out}: {grid.describe()}")
    for line in (grid.mask.describe_dropped(), grid.mask.describe_unknown()):
        if line:
            print(f"note: {line}")
    for w in grid.warnings:
        print(f"note: {w}")
    return 0
