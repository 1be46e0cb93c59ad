"""One budget's spend row and what it fires (pure, JSON-serialisable, kept in the
controller's changelog).

Spend is attributed by each call's event time: a call counts in the period its timestamp
falls in; a call of a period older than the row's is late and left out of the budget (it is
still in the cost figures). Which period is current, and where the rate window ends, is the
controller's clock: the later of the newest event time and the wall clock, so a period
rolls over (and a rolling window drains) even when no calls arrive.

Calendar periods fire each threshold once per period; the forecast alert fires once per
period and resolves when the projection falls back under the budget. A rolling window
re-arms a threshold (with a resolve record) when its spend falls back below it.
"""

from __future__ import annotations

from typing import Any

from streams.budget_periods import MINUTE_MS, period_of, rolling_bucket
from streams.budgets import Budget, alert_record, forecast_alert, reached, state_record
from streams.money import usd

Row = dict[str, Any]


def new_row(budget: Budget, clock_ms: int, seed_nanousd: int = 0, fired: Any = ()) -> Row:
    key, start, end = period_of(budget.period, clock_ms)
    return {
        "kind": kind_of(budget),
        "period": key,
        "start_ms": start,
        "end_ms": end,
        "spend_nanousd": 0 if budget.period.rolling else seed_nanousd,
        "buckets": {},
        "recent": {},
        "fired": {f"{float(t):g}": start for t in fired},
        "forecast": {"fired": False, "active": None},
    }


def kind_of(budget: Budget) -> str:
    """What a row was made for: a budget of another period or zone needs a new row."""
    return f"{budget.period.label()}@{budget.period.timezone}"


def add(row: Row, budget: Budget, minute_ms: int, nanos: int, clock_ms: int) -> bool:
    """Attribute one (minute, spend) of the scope; False when it is outside the budget."""
    counted = False
    if budget.period.rolling:
        if minute_ms >= clock_ms - budget.period.hours * 3_600_000:
            bucket = str(rolling_bucket(budget.period, minute_ms))
            row["buckets"][bucket] = row["buckets"].get(bucket, 0) + nanos
            row["spend_nanousd"] += nanos
            counted = True
    else:
        key, start, end = period_of(budget.period, minute_ms)
        if start > row["start_ms"]:
            _roll_over(row, key, start, end)
        if start == row["start_ms"]:
            row["spend_nanousd"] += nanos
            counted = True
    if minute_ms >= clock_ms - budget.forecast_minutes * MINUTE_MS:
        recent = row["recent"]
        recent[str(minute_ms)] = recent.get(str(minute_ms), 0) + nanos
    return counted


def _roll_over(row: Row, key: str, start: int, end: int) -> None:
    row.update(period=key, start_ms=start, end_ms=end, spend_nanousd=0, fired={})
    row["forecast"]["fired"] = False


def advance(row: Row, budget: Budget, clock_ms: int) -> list[dict[str, Any]]:
    """Move the row to the clock's period (a new calendar period starts clean; a rolling
    window drops spend older than its length); returns the resolve records this causes."""
    out: list[dict[str, Any]] = []
    horizon = clock_ms - budget.forecast_minutes * MINUTE_MS
    for minute in [m for m in row["recent"] if int(m) < horizon]:
        del row["recent"][minute]
    if budget.period.rolling:
        row["start_ms"], row["end_ms"] = clock_ms - budget.period.hours * 3_600_000, clock_ms
        gone = [b for b in row["buckets"] if int(b) < row["start_ms"]]
        for bucket in gone:
            row["spend_nanousd"] -= row["buckets"].pop(bucket)
        return out
    if clock_ms >= row["end_ms"]:
        key, start, end = period_of(budget.period, clock_ms)
        active = row["forecast"].get("active")
        if active is not None:
            out.append(_forecast_resolve(row, budget, active, clock_ms))
        _roll_over(row, key, start, end)
    return out


def forecast(row: Row, budget: Budget, clock_ms: int) -> dict[str, Any]:
    """Spend rate over the last `forecast_minutes`, projected spend at the period's end
    (for a rolling window: the window's spend at that rate) and when 100 % is reached."""
    window_ms = budget.forecast_minutes * MINUTE_MS
    horizon = clock_ms - window_ms
    recent = sum(n for m, n in row["recent"].items() if int(m) >= horizon)
    rate = recent / window_ms  # nano-dollars per ms
    spend, amount = row["spend_nanousd"], budget.budget_nanousd
    if budget.period.rolling:
        projected = int(rate * budget.period.hours * 3_600_000)
        end = None
    else:
        end = row["end_ms"]
        projected = spend + int(rate * max(0, end - clock_ms))
    full_ms = None
    if spend < amount and rate > 0 and (end is not None or projected >= amount):
        full_ms = clock_ms + int(-(-(amount - spend) // rate))
        if end is not None and full_ms >= end:
            full_ms = None
    crossing = spend >= amount or full_ms is not None or projected >= amount
    return {
        "window_minutes": budget.forecast_minutes,
        "rate_nanousd_per_hour": int(rate * 3_600_000),
        "rate_usd_per_hour": usd(int(rate * 3_600_000)),
        "projected_spend_nanousd": projected,
        "projected_spend_usd": usd(projected),
        "projected_full_ms": full_ms,
        "over_budget": crossing,
    }


def evaluate(row: Row, budget: Budget, clock_ms: int, now_ms: int) -> list[dict[str, Any]]:
    """Threshold and forecast alerts due now (and resolves); updates the row's fired marks."""
    out: list[dict[str, Any]] = []
    spend, period, fired = row["spend_nanousd"], row["period"], row["fired"]
    rolling = budget.period.rolling
    for t in budget.thresholds:
        name = f"{t:g}"
        hit = reached(budget, t, spend)
        if hit and name not in fired:
            fired[name] = clock_ms
            alert_id = f"budget:{budget.scope}:{period}:{name}"
            if rolling:
                alert_id += f":{clock_ms}"  # each rolling episode is an alert of its own
            out.append(alert_record(budget, period, t, spend, now_ms, "fired", alert_id))
        elif rolling and not hit and name in fired:
            since = fired.pop(name)
            alert_id = f"budget:{budget.scope}:{period}:{name}:{since}"
            out.append(alert_record(budget, period, t, spend, now_ms, "resolved", alert_id))
    fc = forecast(row, budget, clock_ms)
    state = row["forecast"]
    if fc["over_budget"] and state.get("active") is None and (rolling or not state["fired"]):
        state["fired"], state["active"] = True, clock_ms
        out.append(forecast_alert(budget, period, fc, now_ms, "fired", _forecast_id(row, budget)))
    elif not fc["over_budget"] and state.get("active") is not None:
        out.append(_forecast_resolve(row, budget, state["active"], now_ms, fc))
    return out


def _forecast_id(row: Row, budget: Budget, since: int | None = None) -> str:
    base = f"budget:{budget.scope}:{row['period']}:forecast"
    if budget.period.rolling:
        return f"{base}:{row['forecast']['active'] if since is None else since}"
    return base


def _forecast_resolve(
    row: Row, budget: Budget, since: int, now_ms: int, fc: dict[str, Any] | None = None
) -> dict[str, Any]:
    fc = fc or forecast(row, budget, now_ms)
    row["forecast"]["active"] = None
    return forecast_alert(
        budget, row["period"], fc, now_ms, "resolved", _forecast_id(row, budget, since)
    )


def record(row: Row, budget: Budget, clock_ms: int, now_ms: int) -> dict[str, Any]:
    """The budget-state record of this row."""
    end = None if budget.period.rolling else row["end_ms"]
    fc = forecast(row, budget, clock_ms)
    fc["alert"] = row["forecast"].get("active") is not None
    return state_record(
        budget, row["period"], row["spend_nanousd"], now_ms, (row["start_ms"], end), fc
    )
