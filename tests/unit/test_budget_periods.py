"""Budget periods as pure maths: every instant falls in exactly one period, periods tile the
time line, and days start at local midnight even on DST days (23 and 25 hours long)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.budget_periods import HOUR_MS, Period, period_of

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
instants = st.integers(min_value=946_684_800_000, max_value=4_102_444_799_999)
periods = st.builds(
    Period, kind=st.sampled_from(("day", "week", "month")), timezone=st.sampled_from(ZONES)
)


def ms(zone: str, *fields: int) -> int:
    return int(datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp() * 1000)


@given(periods, instants)
def test_an_instant_is_in_its_period_and_periods_tile(period: Period, t: int) -> None:
    key, start, end = period_of(period, t)
    assert start <= t < end
    assert period_of(period, start) == (key, start, end)
    assert period_of(period, end - 1) == (key, start, end)
    assert period_of(period, end)[1] == end  # the next one starts where this one ends
    assert period_of(period, start - 1)[2] == start
    local = datetime.fromtimestamp(start / 1000, ZoneInfo(period.timezone))
    assert (local.hour, local.minute) == (0, 0)


@given(st.sampled_from(ZONES), instants)
def test_week_is_the_iso_week_and_month_the_calendar_month(zone: str, t: int) -> None:
    local = datetime.fromtimestamp(t / 1000, ZoneInfo(zone))
    year, week, _ = local.isocalendar()
    assert period_of(Period("week", zone), t)[0] == f"{year}-W{week:02d}"
    assert period_of(Period("month", zone), t)[0] == f"{local.year}-{local.month:02d}"
    assert period_of(Period("day", zone), t)[0] == local.date().isoformat()


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", (2026, 3, 29), 23), ("Europe/Berlin", (2026, 10, 25), 25),
        ("America/New_York", (2026, 3, 8), 23), ("America/New_York", (2026, 11, 1), 25),
        ("Europe/Berlin", (2026, 3, 28), 24),
    ],
)  # fmt: skip
def test_dst_days_are_23_and_25_hours(zone: str, day: tuple[int, int, int], hours: int) -> None:
    noon = ms(zone, *day, 12)
    key, start, end = period_of(Period("day", zone), noon)
    assert key == "{:04d}-{:02d}-{:02d}".format(*day)
    assert start == ms(zone, *day) and end - start == hours * HOUR_MS
    # the hour skipped or repeated is inside the day: 01:30 UTC is 03:30 or 02:30 in Berlin
    assert period_of(Period("day", zone), start + 3 * HOUR_MS)[0] == key


def test_month_and_iso_week_boundaries() -> None:
    zone = "America/New_York"
    last = ms(zone, 2026, 1, 31, 23, 59, 59) + 999
    assert period_of(Period("month", zone), last)[0] == "2026-01"
    assert period_of(Period("month", zone), last + 1)[0] == "2026-02"
    _, start, end = period_of(Period("month", zone), last + 1)
    assert end - start == 28 * 24 * HOUR_MS
    # March 2026 holds the spring change: one hour shorter
    _, start, end = period_of(Period("month", zone), ms(zone, 2026, 3, 15))
    assert end - start == 31 * 24 * HOUR_MS - HOUR_MS
    # ISO week 2026-W53 runs Mon 28 Dec 2026 .. Sun 3 Jan 2027; Jan 4 is W01 of 2027
    sunday = ms(zone, 2027, 1, 3, 23, 0)
    assert period_of(Period("week", zone), sunday)[0] == "2026-W53"
    assert period_of(Period("week", zone), sunday + 2 * HOUR_MS)[0] == "2027-W01"
    _, start, _ = period_of(Period("week", zone), sunday)
    assert start == ms(zone, 2026, 12, 28)


@given(st.integers(min_value=1, max_value=744), instants)
def test_rolling_window_ends_now_and_spans_its_hours(hours: int, t: int) -> None:
    period = Period("rolling", "UTC", hours)
    key, start, end = period_of(period, t)
    assert (key, end, end - start) == (f"rolling-{hours}h", t, hours * HOUR_MS)
    assert period.bucket_ms >= 60_000 and hours * HOUR_MS // period.bucket_ms <= 1440


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Period("day", "Mars/Olympus")
    with pytest.raises(ValueError, match="rolling"):
        Period("rolling", "UTC", 0)
    with pytest.raises(ValueError, match="period"):
        Period("year")
