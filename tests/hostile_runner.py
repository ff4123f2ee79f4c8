"""Runs `pvdesk` command lines for the hostile-input suite, each in its own process.

    python tests/hostile_runner.py [--preload light|heavy]

reads one case per line on stdin (JSON: id, argv, cwd, env, timeout, as_bytes, fsize,
stdout, stderr, meta) and writes one result per line on stdout (JSON: id, rc, signal, hang,
seconds, maxrss_kb). The runner imports pvdesk (and, with ``--preload heavy``, torch and
open_clip) once, then forks a child per case: the child limits its address space
(RLIMIT_AS) and, when asked, the size of files it writes (RLIMIT_FSIZE: a full disk), sends
its output to files, runs ``pvdesk.cli.main(argv)`` exactly as the `pvdesk` script does and
exits with its status. A Python exception that escapes is printed as a traceback (as the
interpreter would) so the suite can count it; a native crash shows as a signal; a child
still running at its timeout is killed and counted as a hang. The runner itself starts no
thread, so forking is safe.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # no BLAS thread pools in the process that forks


def preload(kind: str) -> None:
    import importlib

    import numpy  # noqa: F401
    import PIL.Image  # noqa: F401

    import pvdesk.cli

    for name in pvdesk.cli.COMMAND_MODULES:
        importlib.import_module(name)
    for name in ("pvdesk.slides", "pvdesk.tiling", "pvdesk.review.store", "pvdesk.export.csv",
                 "pvdesk.export.geojson_import", "pvdesk.models", "pvdesk.predict",
                 "pvdesk.preview", "openslide", "tqdm"):
        importlib.import_module(name)
    try:  # the window's modules (no QApplication here: each child makes its own)
        for name in ("PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets",
                     "pvdesk.ui.main_window", "pvdesk.ui.app"):
            importlib.import_module(name)
    except ImportError:
        pass
    if kind == "heavy":
        from pvdesk import heavy

        heavy.ml()


def child(case: dict) -> None:
    """In the forked child: limits, redirections, then the command line. Never returns."""
    rc = 70
    try:
        os.setpgid(0, 0)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if case.get("as_bytes"):
            resource.setrlimit(resource.RLIMIT_AS, (case["as_bytes"], case["as_bytes"]))
        if case.get("fsize"):
            resource.setrlimit(resource.RLIMIT_FSIZE, (case["fsize"], case["fsize"]))
        os.environ.update(case.get("env") or {})
        os.chdir(case["cwd"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            f = os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        sys.argv = ["pvdesk", *case["argv"]]
        from pvdesk.cli import main

        try:
            rc = main(list(case["argv"]))
        except SystemExit as exc:
            code = exc.code
            if code is None:
                rc = 0
            elif isinstance(code, int):
                rc = code
            else:
                print(code, file=sys.stderr)
                rc = 1
        rc = 0 if rc is None else int(rc)
    except BaseException:  # what the interpreter would print for an escaping exception
        traceback.print_exc()
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        with open(case["meta"], "w") as fh:
            json.dump({"torch": "torch" in sys.modules}, fh)
    except BaseException:
        pass
    os._exit(rc & 0xFF)


def run(case: dict) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(case)
    deadline = t0 + case["timeout"]
    hang = False
    delay = 0.002
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            break
        if time.monotonic() > deadline:
            hang = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
            done, status, usage = os.wait4(pid, 0)
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    result = {"id": case["id"], "seconds": time.monotonic() - t0, "hang": hang,
              "maxrss_kb": usage.ru_maxrss, "rc": None, "signal": None}
    if os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
    else:
        result["rc"] = os.WEXITSTATUS(status)
    return result


def main() -> None:
    kind = sys.argv[sys.argv.index("--preload") + 1] if "--preload" in sys.argv else "light"
    preload(kind)
    out = sys.stdout
    print(json.dumps({"ready": kind}), file=out, flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run(json.loads(line))), file=out, flush=True)


if __name__ == "__main__":
    main()
