"""Tissue found at any slide size: the CMU mosaic at several sizes keeps the same share.

    python tests/benchmarks/bench_tissue_scale.py [--sizes 65536,100352] [--folder DIR]

Builds (or reuses, in --folder) CMU-sample mosaics (make_large_slide.py: 5 levels, JPEG)
of each size and prints, per size: the mask's size and pixel width, the tissue fraction,
the kept tiles of all grid positions, fragments dropped by the small-object rule, time and
peak RSS of make_grid (each size in its own process, so the peaks do not mix). The same
pattern at every size should keep about the same share (the sample itself: 52 of 140
tiles, 37%). Before the rules became physical the 100,352 px mosaic kept 0.1%.
Building a 100k px slide takes about 2 minutes and 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pvdesk.slides import open_source
from pvdesk.tiling import make_grid
with open_source({path!r}) as src:
    t = time.perf_counter()
    g = make_grid(src)
    s = time.perf_counter() - t
    m = g.mask
    print(json.dumps({{"mask": list(m.mask.shape), "mask_um": m.downsample[0] * src.mpp,
                      "tissue": m.fraction_total, "tiles": len(g), "positions": g.total_positions,
                      "dropped": m.dropped_objects, "seconds": s,
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="65536,100352")
    ap.add_argument("--folder", default=None, help="where the mosaics are kept (default: temp)")
    args = ap.parse_args()
    from make_large_slide import make_large_slide

    folder = Path(args.folder or tempfile.mkdtemp(prefix="pvdesk-mosaics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for size in (int(v) for v in args.sizes.split(",")):
        path = folder / f"cmu-mosaic-{size}.tiff"
        if not path.exists():
            print(f"building {path} ...", flush=True)
            make_large_slide(path, size)
        out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT),
                                                                 path=str(path))],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{size:>7} px: mask {r['mask'][1]} px ({r['mask_um']:.1f} um/px), tissue "
              f"{r['tissue']:.1%}, {r['tiles']} of {r['positions']} tiles kept "
              f"({r['tiles'] / r['positions']:.1%}), {r['dropped']} fragments dropped, "
              f"{r['seconds']:.1f} s, peak {r['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
