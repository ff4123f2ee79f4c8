"""`pvdesk info PATH`: what a slide, image or patch folder is, and how it tiles."""

from __future__ import annotations

from pvdesk.commands.common import add_grid_arguments
from pvdesk.progress import TerminalProgress
from pvdesk.slides import PyramidSource, open_source
from pvdesk.tiling import make_grid


def register(sub) -> None:
    p = sub.add_parser("info", help="vendor, size, levels, mpp, tissue and tile count of a slide",
                       description="Describe a slide, image or patch folder.")
    p.add_argument("path", help="slide file, image or folder of patch images")
    add_grid_arguments(p)
    p.set_defaults(func=run)


def _fmt(v, unit="") -> str:
    if v is None:
        return "unknown"
    return f"{v:g}{unit}" if isinstance(v, float) else f"{v}{unit}"


def run(args) -> int:
    with open_source(args.path, mpp=args.mpp) as src:
        lines = [f"file:            {src.path}", f"vendor:          {src.vendor}",
                 f"slide id:        {src.slide_id}"]
        if isinstance(src, PyramidSource):
            w, h = src.dimensions
            lines.append(f"dimensions:      {w} x {h} px")
            lines.append(f"levels:          {src.level_count}")
            for i, ((lw, lh), ds) in enumerate(zip(src.level_dimensions,
                                                   src.level_downsamples, strict=True)):
                lines.append(f"  level {i}:       {lw} x {lh} px (downsample {ds:.3g})")
            lines.append(f"mpp:             {_fmt(src.mpp, ' um/px')}"
                         + (" (stated by the user)" if args.mpp else ""))
            lines.append(f"objective power: {_fmt(src.objective_power, 'x')}")
            with TerminalProgress("thumbnail", "rows") as bar:
                grid = make_grid(src, args.tile_um, args.size, args.overlap, args.min_tissue,
                                 progress=bar)
            lines.append(f"tissue fraction: {grid.mask.fraction_total:.1%}")
        else:
            props = src.properties()
            lines.append(f"images:          {props['images']}")
            lines.append(f"classes:         {', '.join(props['classes']) or 'none from names'}")
            grid = make_grid(src, out_size=args.size)
        lines.append(f"tiles:           {grid.describe()}")
        print("\n".join(lines))
        for w in grid.warnings:
            print(f"note: {w}")
    return 0
