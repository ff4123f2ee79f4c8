"""GUI responsiveness while inference runs: gaps in the event loop, with and without panning.

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_gui_responsiveness.py
        [--model demo-clip-rn50] [--seconds 60] [--batch 16] [--no-pan]

Opens the CMU sample in the main window, starts a run and, until it ends (or ``--seconds``
pass, then it is cancelled), a 5 ms QTimer records the time between its firings. Unless
``--no-pan``, a 16 ms timer also pans the view back and forth (and zooms now and then), so
tile loading and repainting happen during the run as when a person pans. Prints the idle
baseline (same window, no run), then during the run: the longest gap, the 99th and 50th
percentiles, the number of gaps over 50 ms, the run's tiles/s and the paint time.
Asserts nothing: the target (longest gap <= 50 ms) is in issue 6.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))] if s else float("nan")


class GapMeter:
    def __init__(self, interval_ms: int = 5):
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = None
        self.timer = QTimer(interval=interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append((now - self._last) * 1000)
        self._last = now

    def start(self):
        self.gaps.clear()
        self._last = None
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def report(self, label: str) -> str:
        g = self.gaps
        return (f"{label}: {len(g)} ticks, longest gap {max(g):.1f} ms, p99 "
                f"{percentile(g, 99):.1f} ms, p50 {percentile(g, 50):.1f} ms, "
                f"gaps > 50 ms: {sum(1 for x in g if x > 50)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo-clip-rn50")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tile-um", type=float, default=None)
    ap.add_argument("--no-pan", action="store_true")
    ap.add_argument("--no-prewarm", action="store_true",
                    help="do not import torch at start-up as run_app does (shows its pauses)")
    ap.add_argument("--switch-ms", type=float, default=None,
                    help="override sys.setswitchinterval (GIL hand-over), in ms")
    args = ap.parse_args()
    if args.switch_ms:
        sys.setswitchinterval(args.switch_ms / 1000)

    import tempfile

    os.environ.setdefault("PVDESK_HOME", tempfile.mkdtemp(prefix="pvdesk-bench-"))
    import gc

    from PySide6.QtCore import QEventLoop, QTimer

    from pvdesk.paths import sample_slide
    from pvdesk.ui.app import get_app, prewarm_ml
    from pvdesk.ui.main_window import MainWindow
    from pvdesk.ui.worker import RunRequest

    gc_ms: list[tuple[float, int]] = []
    gc_start = {}

    def gc_cb(phase, info):
        if phase == "start":
            gc_start["t"] = time.perf_counter()
        elif "t" in gc_start:
            gc_ms.append(((time.perf_counter() - gc_start.pop("t")) * 1000, info["generation"]))

    gc.callbacks.append(gc_cb)
    app = get_app()
    w = MainWindow()
    w.resize(1280, 800)
    w.show()
    w.open_path(sample_slide())
    if not args.no_prewarm:
        prewarm_ml().join()  # as run_app does shortly after the window appears
    while w.source is None:
        app.processEvents()
        time.sleep(0.01)

    paint_ms: list[float] = []
    view = w.view
    original_paint = view.paintEvent

    def timed_paint(event):
        t = time.perf_counter()
        original_paint(event)
        paint_ms.append((time.perf_counter() - t) * 1000)

    view.paintEvent = timed_paint
    step = {"n": 0}

    def pan():
        step["n"] += 1
        n = step["n"]
        if n % 120 == 0:
            view.set_scale(1.0 if view.vp.scale < 0.9 else view.vp.fit_scale)
        dx = 12 if (n // 60) % 2 == 0 else -12
        view.pan_by(dx, dx / 2)

    panner = QTimer(interval=16)
    panner.timeout.connect(pan)
    meter = GapMeter(5)

    def run_loop(seconds, until=None):
        """Run the real event loop (app.exec-like) for ``seconds`` or until ``until()``."""
        loop = QEventLoop()
        check = QTimer(interval=50)
        check.timeout.connect(lambda: loop.quit() if until and until() else None)
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        check.start()
        loop.exec()
        check.stop()

    # baseline: same window, panning, no inference
    meter.start()
    if not args.no_pan:
        panner.start()
    run_loop(5.0)
    meter.stop()
    print(meter.report("idle (panning)" if not args.no_pan else "idle"))
    if paint_ms:
        print(f"  idle view paints: {len(paint_ms)}, longest {max(paint_ms):.1f} ms, "
              f"p99 {percentile(paint_ms, 99):.1f} ms, p50 {percentile(paint_ms, 50):.1f} ms")

    states: list[str] = []
    w.runs.finished.connect(states.append)
    progress = []
    w.runs.progress.connect(progress.append)
    paint_ms.clear()
    gc_ms.clear()
    mark = {}
    w.runs.progress.connect(lambda _p: mark.setdefault("stream", len(meter.gaps)))
    meter.start()
    t0 = time.perf_counter()
    w.start_run(RunRequest([args.model], device="cpu", batch_size=args.batch,
                           tile_um=args.tile_um))
    run_loop(args.seconds, until=lambda: bool(states))
    if not states:
        w.cancel_run()
        run_loop(60, until=lambda: bool(states))
    meter.stop()
    panner.stop()
    elapsed = time.perf_counter() - t0
    p = progress[-1] if progress else None
    print(meter.report(f"during {args.model} run ({elapsed:.0f} s, {states[0] if states else '?'})"))
    k = mark.get("stream")
    if k:
        all_gaps = list(meter.gaps)
        meter.gaps[:] = all_gaps[:k]
        print("  " + meter.report("loading the model (torch import, weights)"))
        meter.gaps[:] = all_gaps[k:]
        print("  " + meter.report("streaming tiles"))
    if p:
        print(f"run: {p.done}/{p.total} tiles, {p.tiles_per_s:.2f} tiles/s (engine)")
    if paint_ms:
        print(f"view paints: {len(paint_ms)}, longest {max(paint_ms):.1f} ms, "
              f"p99 {percentile(paint_ms, 99):.1f} ms")
    if gc_ms:
        worst = max(gc_ms)
        print(f"garbage collections during the run: {len(gc_ms)}, longest {worst[0]:.1f} ms "
              f"(generation {worst[1]}), total {sum(m for m, _ in gc_ms):.0f} ms")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
