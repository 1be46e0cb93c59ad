"""Budget thresholds per scope and period (pure): what state a spend is in, what alerts fire.

A threshold fires once per scope per period: the fired ones are kept in the spend row, which
is written in the same Kafka transaction as the alert (streams.controller).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

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


@dataclass(frozen=True)
class Budget:
    scope: str
    budget_nanousd: int
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS


def parse_budget(obj: dict[str, Any]) -> Budget:
    """A control record of kind 'budget' (docs/topics.md); raises ValueError when malformed."""
    scope = obj.get("scope")
    if not isinstance(scope, str) or not scope:
        raise ValueError("budget without a scope")
    try:
        amount = Decimal(str(obj["daily_budget_usd"]))
    except (KeyError, InvalidOperation):
        raise ValueError(f"budget {scope}: daily_budget_usd must be a decimal string") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"budget {scope}: daily_budget_usd must be positive")
    thresholds = tuple(float(t) for t in obj.get("thresholds") or DEFAULT_THRESHOLDS)
    if not thresholds or list(thresholds) != sorted(thresholds) or thresholds[0] <= 0:
        raise ValueError(f"budget {scope}: thresholds must be ascending fractions")
    return Budget(scope, int(amount * NANOS_PER_USD), thresholds)


def severity(index: int, count: int) -> str:
    if index == count - 1:
        return "stop"
    return SEVERITIES[min(index, 2)] if count != 4 else SEVERITIES[index]


def crossed(budget: Budget, spend_nanousd: int) -> list[float]:
    """Thresholds at or under the spend (integer arithmetic: no float rounding at 100 %)."""
    return [
        t
        for t in budget.thresholds
        if spend_nanousd * PPM >= round(t * PPM) * budget.budget_nanousd
    ]


def state(budget: Budget, spend_nanousd: int) -> str:
    hit = crossed(budget, spend_nanousd)
    if not hit:
        return "ok"
    return STATE_OF_SEVERITY[severity(len(hit) - 1, len(budget.thresholds))]


def percent(budget: Budget, spend_nanousd: int) -> float:
    return round(100.0 * spend_nanousd / budget.budget_nanousd, 4)


def state_record(budget: Budget, period: str, spend_nanousd: int, now_ms: int) -> dict[str, Any]:
    """The budget-state topic record (docs/topics.md)."""
    return {
        "v": 1,
        "scope": budget.scope,
        "period": period,
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


def alert_record(
    budget: Budget, period: str, threshold: float, spend_nanousd: int, now_ms: int
) -> dict[str, Any]:
    index = budget.thresholds.index(threshold)
    value = percent(budget, spend_nanousd)
    return {
        "v": 1,
        "id": f"budget:{budget.scope}:{period}:{threshold:g}",
        "rule": "budget",
        "status": "fired",
        "severity": severity(index, len(budget.thresholds)),
        "scope": budget.scope,
        "value": value,
        "threshold": round(threshold * 100, 4),
        "window": period,
        "time_ms": now_ms,
        "message": f"{budget.scope} spend at {value:.1f} % of ${usd(budget.budget_nanousd)}",
    }
