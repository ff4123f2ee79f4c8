"""The time stamps pvdesk writes into manifests, reports and sidecars."""

from __future__ import annotations

import datetime as _dt


def now_iso() -> str:
    """UTC now, ISO 8601 to the second with a ``Z`` (e.g. 2026-11-30T02:50:00Z)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")
