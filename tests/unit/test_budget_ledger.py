"""One budget's ledger row as pure logic: thresholds once per period, a clean new period,
late calls left out, rolling windows that drain and re-arm, the forecast firing once and
resolving."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from streams import budget_ledger as ledger
from streams.budget_periods import HOUR_MS, MINUTE_MS, Period
from streams.budgets import Budget

USD = 1_000_000_000
BERLIN = ZoneInfo("Europe/Berlin")


def at(*fields: int) -> int:
    return int(datetime(*fields, tzinfo=BERLIN).timestamp() * 1000)


def run(row: ledger.Row, budget: Budget, calls: list[tuple[int, int]], clock: int) -> list[str]:
    """Feed calls as the controller does; returns '<status> <id>' of what fired."""
    out = ledger.advance(row, budget, clock)
    for minute, nanos in calls:
        ledger.add(row, budget, minute, nanos, clock)
    out += ledger.evaluate(row, budget, clock, clock)
    orjson.dumps(row)  # the row must stay JSON for the changelog
    return [f"{a['status']} {a['id']}" for a in out]


def test_day_in_berlin_on_the_dst_day_fires_once_and_starts_clean() -> None:
    budget = Budget("tag:team=growth", 10 * USD, period=Period("day", "Europe/Berlin"))
    t = at(2026, 3, 29, 23, 30)  # the 23-hour day, half an hour before its end
    row = ledger.new_row(budget, t)
    assert row["period"] == "2026-03-29" and row["end_ms"] - row["start_ms"] == 23 * HOUR_MS
    fired = run(row, budget, [(t - MINUTE_MS, 6 * USD)], t)
    assert "fired budget:tag:team=growth:2026-03-29:0.5" in fired
    assert not [f for f in run(row, budget, [(t, 1)], t) if ":0.5" in f]  # once per period
    late_clock = at(2026, 3, 30, 0, 5)
    fired = run(row, budget, [(t, 5 * USD)], late_clock)  # a late call of yesterday
    assert row["period"] == "2026-03-30" and row["spend_nanousd"] == 0
    assert not [f for f in fired if "2026-03-30" in f and "forecast" not in f]
    # yet the rate counts every recent call: $11 in the last hour forecasts a new day over $10
    assert "fired budget:tag:team=growth:2026-03-30:forecast" in fired


def test_rolling_window_drains_and_re_arms() -> None:
    budget = Budget("user:u1", USD, (0.5, 1.0), Period("rolling", "UTC", 2))
    t0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS
    row = ledger.new_row(budget, t0)
    fired = run(row, budget, [(t0, USD)], t0)
    assert sorted(f.split(":")[-2] for f in fired if "forecast" not in f) == ["0.5", "1"]
    # an hour on: still in the window; two hours and a minute on: drained, both re-arm
    assert not [f for f in run(row, budget, [], t0 + HOUR_MS) if "forecast" not in f]
    fired = run(row, budget, [], t0 + 2 * HOUR_MS + MINUTE_MS)
    assert row["spend_nanousd"] == 0
    assert sorted(f.split()[0] for f in fired if "forecast" not in f) == ["resolved"] * 2
    fired = run(row, budget, [(t0 + 3 * HOUR_MS, USD // 2)], t0 + 3 * HOUR_MS)
    assert [f for f in fired if f.startswith("fired") and ":0.5:" in f]  # fires again


def test_forecast_fires_once_per_period_and_resolves() -> None:
    budget = Budget("global", 100 * USD, period=Period("month", "America/New_York"))
    t = int(datetime(2026, 11, 10, 12, tzinfo=ZoneInfo("America/New_York")).timestamp() * 1000)
    row = ledger.new_row(budget, t)
    # $1 over the last hour, 20.5 days left: ~$492 projected against $100
    fired = run(row, budget, [(t - 30 * MINUTE_MS, USD)], t)
    assert fired == ["fired budget:global:2026-11:forecast"]
    fc = ledger.forecast(row, budget, t)
    assert fc["rate_nanousd_per_hour"] == USD and fc["over_budget"]
    assert t < fc["projected_full_ms"] < row["end_ms"]
    expected = USD + USD * (row["end_ms"] - t) // HOUR_MS  # 493 h at $1/h
    assert abs(fc["projected_spend_nanousd"] - expected) <= 1
    # two quiet hours: the rate falls to 0, the projection back to $1: resolved, once
    assert run(row, budget, [], t + 2 * HOUR_MS) == ["resolved budget:global:2026-11:forecast"]
    assert run(row, budget, [(t + 2 * HOUR_MS, 5 * USD)], t + 2 * HOUR_MS) == []  # once
    state = ledger.record(row, budget, t + 2 * HOUR_MS, t + 2 * HOUR_MS)
    assert state["period_kind"] == "month" and state["period_end_ms"] == row["end_ms"]
    assert state["forecast"]["alert"] is False
