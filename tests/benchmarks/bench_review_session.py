"""Review session on a large slide run: how long the store and the queue take per action.

    python tests/benchmarks/bench_review_session.py [columns rows]

Records a fake run of columns x rows tiles (default 200 x 150 = 30 000) through the app's
RunRecorder, then times loading the session (the app does this on its writer thread) and the
things the GUI thread does per key press. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from review_support import fake_source, grid_tiles, record_fake_run  # noqa: E402

from pvdesk.review import ReviewStore  # noqa: E402
from pvdesk.review.session import ReviewSession  # noqa: E402


def timed(label: str, fn):
    t = time.perf_counter()
    out = fn()
    print(f"{label:<34} {1000 * (time.perf_counter() - t):8.1f} ms")
    return out


def main(cols: int = 200, rows: int = 150) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pvdesk-bench-review-"))
    store = ReviewStore(folder / "bench.pvdb", reviewer="bench")
    src = fake_source(folder / "slide.tif")
    print(f"{cols * rows} tiles")
    timed("record the run (one transaction)",
          lambda: record_fake_run(store, src, grid_tiles(cols, rows, 224), side=224))
    s = timed("load the session (writer thread)", lambda: ReviewSession(store, "slide-1"))
    s.first()
    timed("confirm (Enter)", lambda: s.command("enter"))
    timed("correct (5)", lambda: s.command("5"))
    timed("next (J)", lambda: s.command("j"))
    s.toggle([e.tile_id for e in s.entries[10:60]])
    timed("bulk correct 50 tiles (0)", lambda: s.command("0"))
    timed("undo", s.undo)
    timed("counts", s.counts)
    timed("filter: unreviewed", lambda: s.set_filters(status="unreviewed"))
    timed("tile under the cursor", lambda: s.tile_at(cols * 112, rows * 112))
    timed("reviewed tiles (outlines)", s.reviewed)
    store.close()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
