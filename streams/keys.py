"""Redis key names of the snapshots (docs/snapshots.md), shared by the writer and the reader."""

from __future__ import annotations

from datetime import date

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def minute(prefix: str, start_ms: int) -> str:
    return f"{prefix}:snap:minute:{start_ms}"


def hour(prefix: str, start_ms: int) -> str:
    return f"{prefix}:snap:hour:{start_ms}"


def day(prefix: str, day_label: str | date) -> str:
    return f"{prefix}:snap:day:{day_label}"


def live(prefix: str) -> str:
    return f"{prefix}:snap:live"


def budgets(prefix: str) -> str:
    return f"{prefix}:snap:budgets"


def alerts(prefix: str) -> str:
    return f"{prefix}:snap:alerts"


def meta(prefix: str) -> str:
    return f"{prefix}:snap:meta"


def updates_channel(prefix: str) -> str:
    return f"{prefix}:updates"


def floor(ms: int, step: int) -> int:
    return ms - ms % step


LEVEL_NAMES = {"m": "minute", "h": "hour", "d": "day"}
"""Row-key level letters (worker rows `m:`, `c:m:`, `t:m:`...) and their Redis names."""


def slice_cells(prefix: str, level: str, bucket: str | int) -> str:
    """Hash of a bucket's cells: field `<partition>|<cell key JSON>` → partial JSON."""
    return f"{prefix}:slice:{level}:{bucket}:cells"


def slice_table(prefix: str, level: str, bucket: str | int, dimension: str) -> str:
    """Hash of a bucket's table of one dimension (`user`, `tag:<key>`): field
    `<partition>|<value>` → figures, `<partition>#other` → what fell out of the top-K."""
    return f"{prefix}:slice:{level}:{bucket}:{dimension}"
