"""`python -m pvdesk`; in a frozen (PyInstaller) build also `pvdesk -m training ...`,
because there `sys.executable` is pvdesk itself and the GUI starts retraining that way."""

import sys

if getattr(sys, "frozen", False) and sys.argv[1:3] == ["-m", "training"]:
    import runpy

    del sys.argv[1:3]
    runpy.run_module("training", run_name="__main__", alter_sys=True)
    raise SystemExit(0)

from pvdesk.cli import main  # noqa: E402

raise SystemExit(main())
