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
