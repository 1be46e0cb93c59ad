"""Query parameters that name a time range (`window=1h`, or `from`/`to`) and a step (`1m`).

Endpoints take either a window ending now or an explicit `from`/`to` (ISO 8601, or epoch
seconds / milliseconds), and hand the reader epoch milliseconds. A window is whole minutes
(the worker's buckets) ending with the current minute: `window=1h` at 10:30:20 is
[09:31:00, 10:31:00).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Query

from api.errors import ApiError
from producers.contract import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS

MAX_RANGE_MS = 90 * 86_400_000
MINUTE_MS = 60_000
_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")


class Window(StrEnum):
    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"
    ONE_DAY = "24h"
    SEVEN_DAYS = "7d"


@dataclass(frozen=True)
class TimeRange:
    start_ms: int
    end_ms: int
    window: str | None = None  # set for a window ending now: the cache's stand-in across minutes


def duration_ms(text: str) -> int | None:
    """`90s`, `5m`, `1h`, `7d` in milliseconds; None when `text` is not such a duration."""
    match = _DURATION.match(text)
    return int(match[1]) * _UNITS_MS[match[2]] if match else None


def window_ending_now(window: Window, now_ms: int) -> TimeRange:
    """The whole minutes of `window` up to and including the current, still open, minute:
    the same range for a whole minute, so repeated reads can share one answer."""
    end = now_ms - now_ms % MINUTE_MS + MINUTE_MS
    return TimeRange(end - (duration_ms(window) or 0), end, window.value)


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ApiError(422, "invalid_range", "give times with a zone, e.g. 2026-11-26T10:00:00Z")
    return int(moment.timestamp() * 1000)


def time_range(
    window: Annotated[
        Window | None, Query(description="A range ending now. Default 1h when no `from`.")
    ] = None,
    from_: Annotated[
        datetime | None,
        Query(
            alias="from",
            description="Range start: ISO 8601 with zone, or epoch seconds/milliseconds.",
            examples=["2026-11-26T00:00:00Z"],
        ),
    ] = None,
    to: Annotated[datetime | None, Query(description="Range end (exclusive); default now.")] = None,
) -> TimeRange:
    now = time.time_ns() // 1_000_000
    if from_ is None:
        if to is not None:
            raise ApiError(422, "invalid_range", "'to' needs 'from'")
        return window_ending_now(window or Window.ONE_HOUR, now)
    if window is not None:
        raise ApiError(422, "invalid_range", "give either 'window' or 'from'/'to', not both")
    start = _epoch_ms(from_)
    end = _epoch_ms(to) if to is not None else now
    if not (start >= MIN_TIMESTAMP_MS and end <= MAX_TIMESTAMP_MS):
        raise ApiError(422, "invalid_range", "times must lie between 2000 and 2100")
    if end <= start:
        raise ApiError(422, "invalid_range", "'to' must be after 'from'")
    if end - start > MAX_RANGE_MS:
        raise ApiError(422, "invalid_range", "a range may span at most 90 days")
    return TimeRange(start, end)
