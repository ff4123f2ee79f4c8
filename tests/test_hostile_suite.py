"""The hostile-input suite: hundreds of `pvdesk` command lines over malformed, huge, damaged
and hostile inputs, every verb (info, tiles, predict, review stats|export|import|
import-geojson|merge|agreement|reviewers|settings, models, similar, query, explain) and the window's open path (`pvdesk
selftest PATH` opens PATH in the real window, offscreen).

Each case runs in its own process (forked from tests/hostile_runner.py, which imports
pvdesk once) under an address-space limit (RLIMIT_AS), some also under a file-size limit
(RLIMIT_FSIZE: a full disk). Three runners work in parallel. Every input is generated here
(sparse TIFFs are kilobytes on disk). Done when, over every case:

- 0 native crashes (no process killed by a signal),
- 0 tracebacks (on stdout or stderr),
- 0 hangs (each case has a time limit),
- 0 changed files outside the cases' output folders (the inputs, stores and bundles are
  compared byte for byte before and after),
- a refused input ends in exactly one line on stderr and exit status 2; `predict` refuses
  before loading a model (torch is never imported) and leaves neither its --out folder nor
  its --store file behind.

The per-class counts are printed (``-s`` or the terminal summary).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hostile_cases import SLOW, Case, build_cases
from hostile_inputs import good_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                       reason="the runner forks (POSIX, Linux)"),
]

ROOT = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "hostile_runner.py"
GIB = 1 << 30
LIGHT_AS = 3 * GIB  # the interpreter, numpy, OpenSlide, Qt offscreen and the work itself
HEAVY_AS = 8 * GIB  # torch and open_clip mapped in (a 16 GiB tile would still be refused)
LIGHT_TIMEOUT = 45.0
HEAVY_TIMEOUT = 120.0
SUITE_TIMEOUT = 900.0
# Lines the offscreen Qt platform plugin prints on its own (not pvdesk's output).
QT_NOISE = ("This plugin does not support propagateSizeHints()",)


def _sha(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every entry under ``roots``: kind, size, mtime and content hash (never opening a
    FIFO or a device)."""
    out: dict[str, tuple] = {}
    for root in roots:
        items = [root]
        if root.is_dir():
            for folder, dirs, files in os.walk(root, followlinks=False):
                items += [Path(folder, n) for n in sorted(dirs + files)]
        for p in items:
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[str(p)] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[str(p)] = ("file", st.st_size, st.st_mtime_ns, _sha(p))
            elif stat.S_ISDIR(st.st_mode):
                out[str(p)] = ("dir",)
            else:
                out[str(p)] = ("special", stat.S_IFMT(st.st_mode))
    return out


def clean_lines(text: str) -> list[str]:
    """stderr's messages: blank lines and the Qt plugin's notes dropped (progress bars are
    drawn only on a terminal, so none is expected here)."""
    return [line.strip() for line in text.split("\n")
            if line.strip() and line.strip() not in QT_NOISE]


# -- running -----------------------------------------------------------------------------------

def _spec(c: Case, base: Path) -> dict:
    d = base / "cases" / c.id
    (d / "out").mkdir(parents=True)
    c.dir = d
    for name, src in c.copies.items():
        shutil.copy(src, d / name)
    env = {"PVDESK_HOME": str(d / "home"), "PVDESK_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "COLUMNS": "80", **c.env}
    heavy = c.pool == "heavy"
    return {"id": c.id, "argv": c.argv, "cwd": str(d), "env": env,
            "timeout": c.timeout or (HEAVY_TIMEOUT if heavy else LIGHT_TIMEOUT),
            "as_bytes": HEAVY_AS if heavy else LIGHT_AS, "fsize": c.fsize,
            "stdout": str(d / "stdout.txt"), "stderr": str(d / "stderr.txt"),
            "meta": str(d / "meta.json")}


def run_all(cases: list[Case], base: Path) -> dict[str, dict]:
    light = [c for c in cases if c.pool == "light"]
    heavy = [c for c in cases if c.pool == "heavy"]
    # slow ones first (whole-slide thumbnails of the huge sparse TIFFs, then the window's
    # opens), then dealt alternately to the two light runners
    light.sort(key=lambda c: (not c.name.endswith(SLOW), not c.name.startswith("open ")))
    batches = {"light-a": light[0::2], "light-b": light[1::2], "heavy": heavy}
    procs = []
    for name, batch in batches.items():
        if not batch:
            continue
        spec = base / f"{name}.jsonl"
        spec.write_text("".join(json.dumps(_spec(c, base)) + "\n" for c in batch))
        out = open(base / f"{name}.results", "w")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
        procs.append((name, out, subprocess.Popen(
            [sys.executable, str(RUNNER), "--preload", name.split("-")[0]],
            stdin=open(spec), stdout=out, stderr=open(base / f"{name}.log", "w"), env=env,
            cwd=base)))
    deadline = time.monotonic() + SUITE_TIMEOUT
    try:
        for _name, _out, p in procs:
            p.wait(max(1.0, deadline - time.monotonic()))
    finally:
        for _name, out, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            out.close()
    results = {}
    for name, _out, _p in procs:
        for line in (base / f"{name}.results").read_text().splitlines():
            r = json.loads(line)
            if "id" in r:
                results[r["id"]] = r
    return results


def judge(c: Case, r: dict | None) -> list[str]:
    """What is wrong with one case's run (empty: nothing)."""
    if r is None:
        return ["never ran (its runner died or the suite timed out)"]
    problems = []
    err = (c.dir / "stderr.txt").read_text(errors="replace")
    out = (c.dir / "stdout.txt").read_text(errors="replace")
    lines = clean_lines(err)
    if r["signal"] is not None:
        problems.append(f"native crash: signal {r['signal']}")
    if r["hang"]:
        problems.append(f"hang: still running after {r['seconds']:.0f} s")
    if "Traceback (most recent call last)" in err + out:
        problems.append("traceback: " + " | ".join(lines[-3:]))
    if problems:
        return problems
    if c.warnings:
        lines = [line for line in lines if not line.startswith("WARNING: ")]
    if c.expect == "refused" or (c.expect == "either" and r["rc"] != 0):
        if r["rc"] != 2:
            problems.append(f"exit status {r['rc']}, expected 2")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected 1: {lines[:4]}")
        elif c.says and c.says not in lines[0]:
            problems.append(f"the error does not say {c.says!r}: {lines[0]}")
    elif c.expect == "ok" and r["rc"] != 0:
        problems.append(f"exit status {r['rc']}, expected 0: {lines[-2:]}")
    elif c.expect == "listed":
        if r["rc"] != 0:
            problems.append(f"exit status {r['rc']}, expected 0: {lines[-2:]}")
        elif c.says and c.says not in out:
            problems.append(f"stdout does not say {c.says!r}")
    if c.no_torch:
        meta = json.loads((c.dir / "meta.json").read_text()) if (
            c.dir / "meta.json").exists() else {}
        if meta.get("torch"):
            problems.append("torch was imported: a model was loaded before the input was "
                            "checked")
    for rel in c.absent:
        if (c.dir / rel).exists():
            problems.append(f"{rel} was created")
    return problems


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    cases, roots, marker = build_cases(base)
    full = next(c for c in cases if c.name == "import, disk full")
    (base / "full-store").mkdir()
    store_copy = good_store(base / "full-store" / "full.pvdb", n_tiles=200)
    full.argv[2] = str(store_copy)
    (base / "cases").mkdir()
    before = snapshot(*roots)
    t0 = time.monotonic()
    results = run_all(cases, base)
    seconds = time.monotonic() - t0
    after = snapshot(*roots)
    return cases, results, before, after, marker, seconds, store_copy


def suite_dir(cases) -> Path:
    return cases[0].dir.parents[1]


def _report(cases, results, failures, seconds, changed, capsys) -> str:
    counts = Counter(c.cls for c in cases)
    bad = Counter(c.cls for c, _ in failures)
    crashes = sum(1 for r in results.values() if r["signal"] is not None)
    hangs = sum(1 for r in results.values() if r["hang"])
    peak = max((r["maxrss_kb"] for r in results.values()), default=0) / 1024
    lines = [f"hostile-input suite: {len(cases)} cases in {seconds:.0f} s "
             f"(peak RSS of a case {peak:.0f} MiB)"]
    lines += [f"  {cls:<10} {n:>4} cases, {bad[cls]} failing" for cls, n in sorted(
        counts.items())]
    lines.append(f"  native crashes {crashes}, tracebacks "
                 f"{sum(p.startswith('traceback') for _, ps in failures for p in ps)}, "
                 f"hangs {hangs}, changed files outside the outputs {len(changed)}")
    text = "\n".join(lines)
    with capsys.disabled():  # shown in every run, not only when the test fails
        print("\n" + text)
    return text


def test_hostile_inputs(suite, capsys):
    cases, results, before, after, marker, seconds, store_copy = suite
    failures = [(c, ps) for c in cases if (ps := judge(c, results.get(c.id)))]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    summary = _report(cases, results, failures, seconds, changed, capsys)
    assert len(cases) >= 200
    assert not marker.exists(), "a pickle payload ran"
    detail = "\n".join(f"[{c.cls}] {c.name} ({c.id}: {' '.join(c.argv)[:150]}): "
                       + "; ".join(ps) for c, ps in failures)
    (suite_dir(cases) / "failures.txt").write_text(detail)
    detail = "\n".join(detail.splitlines()[:40])
    assert not failures, f"{len(failures)} failing cases\n{summary}\n{detail}"
    assert not changed, f"changed files outside the output folders: {changed[:20]}"


def test_full_disk_left_the_store_whole(suite):
    from pvdesk.review import ReviewStore

    *_, store_copy = suite
    with ReviewStore(store_copy, readonly=True) as s:
        assert s.integrity_check() == "ok"
        assert s.tile_count() == 200  # the CSV's tiles were not half imported
