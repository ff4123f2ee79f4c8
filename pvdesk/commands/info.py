"""`pvdesk info PATH`: what a slide, image or patch folder is, and how it tiles."""

from __future__ import annotations

import json

from pvdesk.commands.common import add_grid_arguments
from pvdesk.progress import TerminalProgress
from pvdesk.slides import PyramidSource, open_source
from pvdesk.tiling import make_grid


def register(sub) -> None:
    p = sub.add_parser("info", help="vendor, size, levels, mpp, tissue and tile count of a slide",
                       description="Describe a slide, image or patch folder.")
    p.add_argument("path", help="slide file, image or folder of patch images")
    add_grid_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def _fmt(v, unit="") -> str:
    if v is None:
        return "unknown"
    return f"{v:g}{unit}" if isinstance(v, float) else f"{v}{unit}"


def describe(src, args) -> dict:
    """What ``info`` reports, as plain data (the JSON form)."""
    out = {"file": str(src.path), "vendor": src.vendor, "slide_id": src.slide_id}
    if isinstance(src, PyramidSource):
        w, h = src.dimensions
        out.update(dimensions=[w, h], levels=[
            {"dimensions": list(d), "downsample": ds}
            for d, ds in zip(src.level_dimensions, src.level_downsamples, strict=True)],
            mpp=src.mpp, mpp_source="user" if args.mpp else ("file" if src.mpp else None),
            objective_power=src.objective_power)
        with TerminalProgress("thumbnail", "rows") as bar:
            grid = make_grid(src, args.tile_um, args.size, args.overlap, args.min_tissue,
                             progress=bar)
        m = grid.mask
        out["tissue_fraction"] = m.fraction_total
        out["tissue_rule"] = {"min_object": m.min_object_rule,
                              "dropped_fragments": m.dropped_objects,
                              "dropped_mm2": m.area_mm2(m.dropped_px),
                              "note": m.describe_dropped()}
        out["unreadable"] = {"fraction": m.unknown_fraction_total, "mm2": m.unknown_mm2,
                             "tiles_overlapping": grid.unknown_tiles,
                             "note": m.describe_unknown()}
    else:
        props = src.properties()
        out.update(images=props["images"], classes=list(props["classes"]))
        grid = make_grid(src, out_size=args.size)
    out["tiles"] = {"count": len(grid), "positions": grid.total_positions,
                    "side_px": grid.side, "stride_px": grid.stride, "tile_um": grid.tile_um,
                    "level": grid.level, "out_size": grid.out_size,
                    "description": grid.describe()}
    out["warnings"] = list(grid.warnings)
    return out


def run(args) -> int:
    with open_source(args.path, mpp=args.mpp) as src:
        d = describe(src, args)
    if args.json:
        print(json.dumps(d, indent=2, ensure_ascii=False))
        return 0
    lines = [f"file:            {d['file']}", f"vendor:          {d['vendor']}",
             f"slide id:        {d['slide_id']}"]
    if "dimensions" in d:
        lines.append(f"dimensions:      {d['dimensions'][0]} x {d['dimensions'][1]} px")
        lines.append(f"levels:          {len(d['levels'])}")
        for i, lv in enumerate(d["levels"]):
            lw, lh = lv["dimensions"]
            lines.append(f"  level {i}:       {lw} x {lh} px (downsample {lv['downsample']:.3g})")
        lines.append(f"mpp:             {_fmt(d['mpp'], ' um/px')}"
                     + (" (stated by the user)" if args.mpp else ""))
        lines.append(f"objective power: {_fmt(d['objective_power'], 'x')}")
        lines.append(f"tissue fraction: {d['tissue_fraction']:.1%}")
        rule = d["tissue_rule"]
        lines.append(f"tissue rule:     fragments {rule['min_object']} are dropped"
                     + (f"; dropped {rule['dropped_fragments']}"
                        + (f" ({rule['dropped_mm2']:.3g} mm²)" if rule["dropped_mm2"] is not None
                           else "") if rule["dropped_fragments"] else "; none dropped"))
        bad = d["unreadable"]
        if bad["note"]:
            lines.append(f"unreadable:      {bad['note']}; {bad['tiles_overlapping']} tile(s) "
                         "overlap it")
        else:
            lines.append("unreadable:      none (every overview block could be read)")
    else:
        lines.append(f"images:          {d['images']}")
        lines.append(f"classes:         {', '.join(d['classes']) or 'none from names'}")
    lines.append(f"tiles:           {d['tiles']['description']}")
    print("\n".join(lines))
    for w in d["warnings"]:
        print(f"note: {w}")
    return 0
