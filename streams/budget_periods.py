"""Budget periods as pure functions of an instant: calendar day, ISO week, calendar month in
an IANA time zone (zoneinfo, so DST days are 23 or 25 hours long), or a rolling window.

A period is (key, start_ms, end_ms) with start <= t < end; the key names it in alerts and
budget-state ("2026-03-29", "2026-W13", "2026-03", "rolling-24h").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
KINDS = ("day", "week", "month", "rolling")
MAX_ROLLING_HOURS = 24 * 31
ROLLING_BUCKETS = 1440  # spend buckets a rolling window keeps at most


@dataclass(frozen=True)
class Period:
    kind: str = "day"
    timezone: str = "UTC"
    hours: int = 0  # rolling windows only

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"period {self.kind!r} must be one of {', '.join(KINDS)}")
        if self.kind == "rolling" and not 1 <= self.hours <= MAX_ROLLING_HOURS:
            raise ValueError(f"a rolling window is 1..{MAX_ROLLING_HOURS} hours, not {self.hours}")
        zone(self.timezone)

    @property
    def rolling(self) -> bool:
        return self.kind == "rolling"

    @property
    def bucket_ms(self) -> int:
        """Spend bucket of a rolling window: a minute, coarser for windows over a day."""
        minutes = -(-self.hours * 60 // ROLLING_BUCKETS)
        return max(1, minutes) * MINUTE_MS

    def label(self) -> str:
        return f"rolling-{self.hours}h" if self.rolling else self.kind


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {name!r} is unknown; use an IANA name like 'UTC'") from None


def local_midnight_ms(day: date, tz: ZoneInfo) -> int:
    """The first instant of `day` in `tz`. A midnight skipped by DST maps (fold=0) to the
    transition itself; a repeated one to its first occurrence."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)


def period_of(period: Period, t_ms: int) -> tuple[str, int, int]:
    """The period holding instant `t_ms`: (key, start_ms, end_ms)."""
    if period.rolling:
        return period.label(), t_ms - period.hours * HOUR_MS, t_ms
    tz = zone(period.timezone)
    return _calendar_period(period, datetime.fromtimestamp(t_ms / 1000, tz).date())


@lru_cache(maxsize=1024)
def _calendar_period(period: Period, local: date) -> tuple[str, int, int]:
    """The calendar period holding local date `local`. Cached by date, not by instant: the
    controller asks with the clock's millisecond at every poll, and a cache by instant
    gained an entry of ~380 bytes each time, 8,192 of them (~3 MB) filling over a worker's
    first ten minutes (issue 14's soak, docs/architecture.md)."""
    tz = zone(period.timezone)
    if period.kind == "day":
        first, after = local, local + timedelta(days=1)
        key = local.isoformat()
    elif period.kind == "week":
        year, week, weekday = local.isocalendar()
        first = local - timedelta(days=weekday - 1)
        after = first + timedelta(days=7)
        key = f"{year}-W{week:02d}"
    else:
        first = local.replace(day=1)
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        key = f"{first.year}-{first.month:02d}"
    return key, local_midnight_ms(first, tz), local_midnight_ms(after, tz)


def rolling_bucket(period: Period, t_ms: int) -> int:
    return t_ms - t_ms % period.bucket_ms
