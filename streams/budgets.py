"""Budget definitions and their records (pure): what state a spend is in, what alerts say.

A budget is one scope's amount per period (streams.budget_periods) with ascending threshold
fractions; streams.budget_ledger keeps its spend row and decides what fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from streams.budget_periods import Period
from streams.money import NANOS_PER_USD, usd

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.8, 0.9, 1.0)
SEVERITIES: tuple[str, ...] = ("warning", "alert", "critical", "stop")
STATE_OF_SEVERITY = {
    "warning": "warning",
    "alert": "alert",
    "critical": "critical",
    "stop": "stopped",
}
PPM = 1_000_000
DEFAULT_FORECAST_MINUTES = 60


@dataclass(frozen=True)
class Budget:
    scope: str
    budget_nanousd: int
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    period: Period = field(default_factory=Period)
    forecast_minutes: int = DEFAULT_FORECAST_MINUTES


def parse_budget(obj: dict[str, Any], default_timezone: str = "UTC") -> Budget:
    """A control record of kind 'budget' (docs/topics.md); raises ValueError when malformed.

    `amount_usd` is the amount per period; `daily_budget_usd` (the specification's field)
    is read when it is absent."""
    scope = obj.get("scope")
    if not isinstance(scope, str) or not scope:
        raise ValueError("budget without a scope")
    raw = obj.get("amount_usd", obj.get("daily_budget_usd"))
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"budget {scope}: amount_usd must be a decimal string") from None
    if raw is None or not amount.is_finite() or amount <= 0:
        raise ValueError(f"budget {scope}: amount_usd (or daily_budget_usd) must be positive")
    thresholds = tuple(float(t) for t in obj.get("thresholds") or DEFAULT_THRESHOLDS)
    if not thresholds or list(thresholds) != sorted(thresholds) or thresholds[0] <= 0:
        raise ValueError(f"budget {scope}: thresholds must be ascending fractions")
    period = Period(
        kind=str(obj.get("period") or "day"),
        timezone=str(obj.get("timezone") or default_timezone),
        hours=int(obj.get("hours") or 0),
    )
    minutes = int(obj.get("forecast_window_minutes") or DEFAULT_FORECAST_MINUTES)
    if not 1 <= minutes <= 24 * 60:
        raise ValueError(f"budget {scope}: forecast_window_minutes must be 1..1440")
    return Budget(scope, int(amount * NANOS_PER_USD), thresholds, period, minutes)


def severity(index: int, count: int) -> str:
    if index == count - 1:
        return "stop"
    return SEVERITIES[min(index, 2)] if count != 4 else SEVERITIES[index]


def reached(budget: Budget, threshold: float, spend_nanousd: int) -> bool:
    """Integer arithmetic: no float rounding at 100 %."""
    return spend_nanousd * PPM >= round(threshold * PPM) * budget.budget_nanousd


def crossed(budget: Budget, spend_nanousd: int) -> list[float]:
    """Thresholds at or under the spend."""
    return [t for t in budget.thresholds if reached(budget, t, spend_nanousd)]


def state(budget: Budget, spend_nanousd: int) -> str:
    hit = crossed(budget, spend_nanousd)
    if not hit:
        return "ok"
    return STATE_OF_SEVERITY[severity(len(hit) - 1, len(budget.thresholds))]


def percent(budget: Budget, spend_nanousd: int) -> float:
    return round(100.0 * spend_nanousd / budget.budget_nanousd, 4)


def state_record(
    budget: Budget,
    period: str,
    spend_nanousd: int,
    now_ms: int,
    bounds: tuple[int, int | None] | None = None,
    forecast: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The budget-state topic record (docs/topics.md); `bounds` is the period's
    (start_ms, end_ms), end None for a rolling window."""
    record: dict[str, Any] = {
        "v": 1,
        "scope": budget.scope,
        "period": period,
        "period_kind": budget.period.label(),
        "timezone": budget.period.timezone,
        "budget_nanousd": budget.budget_nanousd,
        "spend_nanousd": spend_nanousd,
        "budget_usd": usd(budget.budget_nanousd),
        "spend_usd": usd(spend_nanousd),
        "remaining_usd": usd(budget.budget_nanousd - spend_nanousd),
        "percent_used": percent(budget, spend_nanousd),
        "state": state(budget, spend_nanousd),
        "thresholds": list(budget.thresholds),
        "updated_ms": now_ms,
    }
    if bounds is not None:
        record["period_start_ms"], record["period_end_ms"] = bounds
    if forecast is not None:
        record["forecast"] = forecast
    return record


def alert_record(
    budget: Budget,
    period: str,
    threshold: float,
    spend_nanousd: int,
    now_ms: int,
    status: str = "fired",
    alert_id: str | None = None,
) -> dict[str, Any]:
    index = budget.thresholds.index(threshold)
    value = percent(budget, spend_nanousd)
    return {
        "v": 1,
        "id": alert_id or f"budget:{budget.scope}:{period}:{threshold:g}",
        "rule": "budget",
        "status": status,
        "severity": severity(index, len(budget.thresholds)),
        "scope": budget.scope,
        "value": value,
        "threshold": round(threshold * 100, 4),
        "window": period,
        "time_ms": now_ms,
        "message": f"{budget.scope} spend at {value:.1f} % of ${usd(budget.budget_nanousd)}",
    }


def forecast_alert(
    budget: Budget, period: str, forecast: dict[str, Any], now_ms: int, status: str, alert_id: str
) -> dict[str, Any]:
    projected = int(forecast["projected_spend_nanousd"])
    value = percent(budget, projected)
    full = forecast.get("projected_full_ms")
    when = "" if full is None else f", 100 % projected at epoch ms {full}"
    return {
        "v": 1,
        "id": alert_id,
        "rule": "forecast",
        "status": status,
        "severity": "warning",
        "scope": budget.scope,
        "value": value,
        "threshold": 100.0,
        "window": period,
        "time_ms": now_ms,
        "message": f"{budget.scope} projected at {value:.1f} % of ${usd(budget.budget_nanousd)} "
        f"by the end of {period}{when}",
    }
