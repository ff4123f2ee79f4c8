"""BreakHis file names: SOB_<B|M>_<code>-<year>-<patient>-<magnification>-<seq>.png."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pvdesk.taxonomy import by_code

_PATTERN = re.compile(
    r"^SOB_(?P<group>[BM])_(?P<code>A|F|PT|TA|DC|LC|MC|PC)-(?P<year>\d{2})-(?P<patient>[0-9A-Za-z]+)"
    r"-(?P<mag>\d+)-(?P<seq>\d+)$"
)


@dataclass(frozen=True)
class BreakHisName:
    subtype: str  # taxonomy name
    group: str  # benign / malignant
    patient: str  # e.g. "14-22549AB" (year and patient number: unique across the set)
    magnification: int  # 40, 100, 200, 400
    seq: int


def parse_breakhis_name(stem: str) -> BreakHisName | None:
    """Parse a BreakHis file stem; None when the name does not follow the scheme."""
    m = _PATTERN.match(stem)
    if not m:
        return None
    sub = by_code(m["code"])
    group = "benign" if m["group"] == "B" else "malignant"
    if sub.group != group:
        return None
    return BreakHisName(sub.name, group, f"{m['year']}-{m['patient']}", int(m["mag"]),
                        int(m["seq"]))
