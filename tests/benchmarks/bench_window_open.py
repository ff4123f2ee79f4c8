"""Opening a 100k px slide in the window: time to first pixels, overview first vs later.

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_window_open.py
        [--slide BIG.tiff] [--size 100352] [--runs 3]

Builds (or takes) a JPEG-tiled pyramid of 5 levels (make_large_slide.py: at 100,352 px its
coarsest level is 6,272 px square, as on scanners that stop at 16x), then opens it in the real
window (1366 x 768) --runs times each way, alternating, in one process:

- "overview first" (what pvdesk did before): the opener draws the 1024 px overview from the
  coarsest level before the slide is shown;
- "overview later" (now): the slide is shown at once; display tiles load as for any slide and
  the overview follows.

For each: open -> slide shown, -> first pixels painted (the overview or a display tile), ->
overview ready. Target: first pixels <= 1 s. Warm page cache (the file was just written or
read once). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from make_large_slide import make_large_slide  # noqa: E402


def spin_until(app, cond, timeout: float = 60.0) -> float | None:
    """Process events until ``cond()``; the time it became true, None on timeout."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if cond():
            return time.perf_counter()
        time.sleep(0.002)
    return None


def open_once(app, slide: Path, later: bool) -> dict:
    import pvdesk.ui.opener as opener
    from pvdesk.ui.main_window import MainWindow

    opener.THUMB_NOW_PX = (1 << 24) if later else (1 << 62)
    w = MainWindow()
    w.resize(1366, 768)
    w.show()
    app.processEvents()
    t0 = time.perf_counter()
    w.open_path(slide)

    def has_pixels():
        v = w.view
        return v.vp is not None and (v._thumb is not None or any(
            v.loader.cached(k) is not None for k in v.vp.tiles()))

    shown = spin_until(app, lambda: w.source is not None)
    first = spin_until(app, has_pixels)
    overview = spin_until(app, lambda: w.view._thumb is not None)
    w.close()
    app.processEvents()
    return {k: (v - t0 if v is not None else float("nan"))
            for k, v in (("shown", shown), ("first", first), ("overview", overview))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slide", type=Path, default=None)
    ap.add_argument("--size", type=int, default=100352)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="pvbench-open-")
    os.environ["PVDESK_HOME"] = str(Path(tmp.name) / "home")
    slide = args.slide
    if slide is None:
        slide = Path(tmp.name) / f"large{args.size}.tiff"
        t = time.perf_counter()
        make_large_slide(slide, args.size, levels=5)
        print(f"built {slide.name} in {time.perf_counter() - t:.0f} s")

    from PySide6.QtWidgets import QApplication

    from pvdesk.slides import open_source

    with open_source(slide) as src:
        print(f"{slide.name}: {src.dimensions[0]} x {src.dimensions[1]} px, levels "
              f"{[d[0] for d in src.level_dimensions]}")
        src.thumbnail(1024)  # warm the page cache for both ways alike
    app = QApplication.instance() or QApplication([])
    runs = {"overview first (before)": [], "overview later (now)": []}
    for _ in range(args.runs):
        runs["overview first (before)"].append(open_once(app, slide, later=False))
        runs["overview later (now)"].append(open_once(app, slide, later=True))
    print(f"\nmedians over {args.runs} runs (s)          shown   first pixels   overview")
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("shown", "first", "overview")}
        ok = "ok" if med["first"] <= 1.0 else "MISSED"
        print(f"  {name:<34} {med['shown']:6.2f}   {med['first']:8.2f}     {med['overview']:6.2f}"
              f"   first pixels <= 1 s: {ok}")


if __name__ == "__main__":
    main()
