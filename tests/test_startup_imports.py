"""Heavy libraries are imported once, under one lock (pvdesk.heavy), and never by `--help`.

A cold `pvdesk demo` once failed with "cannot import name 'StochasticDepth' from partially
initialized module 'torchvision.ops'": the window's prewarm thread and the run worker
imported torchvision at the same time. Before pvdesk.heavy, the cold-start test below failed
in 13 of 20 starts on a 2-core machine; it must now pass every time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pvdesk import heavy

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "open_clip", "timm", "safetensors.torch")


def _child_env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update(PVDESK_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen",
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


def test_help_imports_no_heavy_library(tmp_path):
    code = textwrap.dedent(f"""
        import contextlib, io, sys
        from pvdesk import cli
        for argv in (["--help"], ["demo", "--help"], ["predict", "--help"], ["models", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                cli.main(argv)
        import pvdesk.heavy, pvdesk.models, pvdesk.inference, pvdesk.ui.app
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_child_env(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_one_import_under_the_lock_whoever_asks(tmp_path, monkeypatch):
    """Many threads ask at once for a slow package with a circular sub-import: it is executed
    once and every thread gets it complete (the failure mode of unlocked imports)."""
    pkg = tmp_path / "pvdesk_fake_heavy"
    pkg.mkdir()
    runs = tmp_path / "runs.txt"
    (pkg / "__init__.py").write_text(textwrap.dedent(f"""
        import time
        with open({str(runs)!r}, "a") as fh:
            fh.write("run\\n")
        time.sleep(0.2)  # a long import: the other threads arrive while it runs
        from pvdesk_fake_heavy.ops import StochasticDepth
        from pvdesk_fake_heavy import ops
    """))
    (pkg / "ops.py").write_text(textwrap.dedent("""
        import pvdesk_fake_heavy  # circular, as torchvision.ops is
        class StochasticDepth:
            pass
    """))
    (pkg / "extra.py").write_text("from pvdesk_fake_heavy.ops import StochasticDepth\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(heavy._NEEDS, "pvdesk_fake_heavy", ("pvdesk_fake_heavy",))
    for name in ("pvdesk_fake_heavy", "pvdesk_fake_heavy.ops", "pvdesk_fake_heavy.extra"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    gate = threading.Barrier(8)
    got, errors = [], []

    def ask(i):
        gate.wait()
        try:
            m = (heavy._get("pvdesk_fake_heavy") if i % 2
                 else heavy.module("pvdesk_fake_heavy.extra"))
            got.append(m.StochasticDepth)
        except BaseException as exc:  # noqa: B036 - collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    try:
        assert not errors, errors
        assert len(got) == 8 and len(set(got)) == 1
        assert runs.read_text().splitlines() == ["run"]
        assert heavy.loaded("pvdesk_fake_heavy") and heavy.loaded("pvdesk_fake_heavy.extra")
    finally:
        heavy._done.difference_update({"pvdesk_fake_heavy", "pvdesk_fake_heavy.extra"})


def test_ml_returns_every_library():
    ml = heavy.ml()
    assert ml.torch.__name__ == "torch" and ml.torchvision.__name__ == "torchvision"
    assert ml.open_clip.__name__ == "open_clip" and hasattr(ml.safetensors_torch, "load_file")
    assert heavy.torch() is ml.torch and heavy.open_clip() is ml.open_clip
    assert heavy.loaded("open_clip")


# One cold start: a fresh interpreter runs the window's prewarm thread and, at the same moment,
# loads a demo bundle as the run worker does (resolve, pick the device, check weights, load).
# Even starts load demo-clip-rn50 (open_clip, which imports torchvision itself; `pvdesk demo`
# loads it first), odd ones demo-resnet50 (torchvision directly).
COLD_START = textwrap.dedent("""
    import sys, threading
    from pvdesk.models import pick_device, resolve_bundle
    from pvdesk.ui.app import DEMO_BUNDLES, prewarm_ml
    cold = [m for m in {heavy!r} if m in sys.modules]
    assert not cold, f"not a cold start: {{cold}} already imported"
    name = DEMO_BUNDLES[{index} % 2]
    gate = threading.Barrier(2)
    failures = []

    def worker():
        gate.wait()
        try:
            device = pick_device("cpu")
            bundle = resolve_bundle(name)
            bundle.weights_status()
            bundle.load(device)
        except BaseException as exc:
            import traceback
            failures.append(traceback.format_exc())

    t = threading.Thread(target=worker, name="pvdesk-run-worker")
    t.start()
    gate.wait()
    prewarm_ml().join(120)
    t.join(120)
    print("".join(failures) or "ok")
    sys.exit(1 if failures else 0)
""")


@pytest.mark.slow
def test_cold_start_twenty_times(tmp_path):
    env = _child_env(tmp_path)

    def start(i: int):
        code = COLD_START.format(heavy=HEAVY, index=i)
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(start, range(20)))
    failed = [(i, r.stdout[-2000:] + r.stderr[-2000:]) for i, r in enumerate(results)
              if r.returncode != 0 or r.stdout.strip() != "ok"]
    assert not failed, f"{len(failed)} of 20 cold starts failed; first: {failed[0]}"
