"""Budgets and alert rules as admins send them, and their records on `<prefix>.control`.

The record formats are docs/topics.md's: key `budget:<scope>` / `rule:<id>`, a JSON value,
and a null value (tombstone) to remove one.
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.kafka_writer import OutRecord

SCOPE_PATTERN = (
    r"^(global|user:[^\s/]{1,128}|service:[^\s/]{1,128}|environment:[^\s/]{1,64}"
    r"|(model|tier):[A-Za-z0-9_.:@-]{1,200}|tag:[a-z0-9_.-]{1,40}=[^\s/]{1,100})$"
)
RULE_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
DEFAULT_THRESHOLDS = (0.5, 0.8, 0.9, 1.0)

Scope = Annotated[str, Field(pattern=SCOPE_PATTERN, examples=["global", "user:alice"])]
Fraction = Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)]
Usd = Annotated[Decimal, Field(gt=0, le=Decimal(10**9), decimal_places=9, allow_inf_nan=False)]


class BudgetUpdate(BaseModel):
    """What an admin sends to PUT /v1/budgets/{scope}."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"daily_budget_usd": "25.00", "thresholds": [0.5, 0.8, 0.9, 1.0]},
                {"amount_usd": "500", "period": "month", "timezone": "Europe/Berlin"},
                {"amount_usd": "5", "period": "rolling", "hours": 24},
            ]
        },
    )

    daily_budget_usd: Usd | None = Field(
        None,
        description="Budget per calendar day in US dollars, exact (a string keeps it so); "
        "the specification's field, same as amount_usd with period day.",
    )
    amount_usd: Usd | None = Field(None, description="Budget per period in US dollars, exact.")
    period: Literal["day", "week", "month", "rolling"] = Field(
        "day", description="Calendar day, ISO week, calendar month, or a rolling window."
    )
    timezone: str | None = Field(
        None,
        max_length=64,
        examples=["America/New_York"],
        description="IANA zone the period's days start in (default: the worker's cost zone).",
    )
    hours: int | None = Field(None, ge=1, le=744, description="Length of a rolling window.")
    forecast_window_minutes: int = Field(
        60, ge=1, le=1440, description="The spend rate of the forecast is over this window."
    )
    thresholds: list[Fraction] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS),
        min_length=1,
        max_length=10,
        description="Fractions of the budget, ascending: warning, alert, critical, stop.",
    )

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, value: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("thresholds must be strictly ascending, e.g. [0.5, 0.8, 0.9, 1.0]")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"time zone {value!r} is unknown; use an IANA name") from None
        return value

    @model_validator(mode="after")
    def _amount_and_period(self) -> BudgetUpdate:
        if (self.amount_usd is None) == (self.daily_budget_usd is None):
            raise ValueError("give exactly one of amount_usd and daily_budget_usd")
        if self.daily_budget_usd is not None and self.period != "day":
            raise ValueError("daily_budget_usd is for period day; use amount_usd")
        if (self.period == "rolling") != (self.hours is not None):
            raise ValueError("hours is required for period rolling and only for it")
        return self

    @property
    def amount(self) -> Decimal:
        amount = self.amount_usd if self.amount_usd is not None else self.daily_budget_usd
        assert amount is not None
        return amount


class BudgetConfig(BudgetUpdate):
    """A budget as written to the control topic."""

    scope: Scope
    updated_ms: int = Field(description="When the admin set it, epoch ms.")


class AlertRule(BaseModel):
    """An alert rule beyond budgets; the worker evaluates it (see docs/topics.md)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "ttfb-p95",
                    "type": "latency_slo",
                    "metric": "time_to_first_byte_ms",
                    "quantile": 0.95,
                    "threshold": 500,
                    "window_s": 300,
                    "min_count": 20,
                    "severity": "warning",
                    "enabled": True,
                }
            ]
        },
    )

    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)]
    type: Literal["latency_slo", "error_rate", "circuit_breaker"]
    metric: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="latency_slo only: the latency series, e.g. time_to_first_byte_ms."
    )
    quantile: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        None, description="latency_slo only: e.g. 0.95."
    )
    threshold: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] = Field(
        0, description="ms for latency_slo, a fraction (0..1) for error_rate, unused otherwise."
    )
    window_s: Annotated[int, Field(ge=60, le=7200)] = 300
    min_count: Annotated[int, Field(ge=1, le=10**9)] = 1
    severity: Literal["info", "warning", "alert", "critical"] = "warning"
    enabled: bool = True

    @model_validator(mode="after")
    def _fits_type(self) -> AlertRule:
        if self.type == "latency_slo" and (self.metric is None or self.quantile is None):
            raise ValueError("a latency_slo rule needs 'metric' and 'quantile'")
        if self.type == "error_rate" and self.threshold > 1:
            raise ValueError("an error_rate threshold is a fraction between 0 and 1")
        return self


class AlertRuleSet(BaseModel):
    """The whole set of alert rules: PUT replaces it, GET returns it."""

    model_config = ConfigDict(extra="forbid")

    rules: list[AlertRule] = Field(max_length=1000)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, value: list[AlertRule]) -> list[AlertRule]:
        ids = [rule.id for rule in value]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        return value


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def budget_record(topic: str, scope: str, update: BudgetUpdate) -> tuple[BudgetConfig, OutRecord]:
    config = BudgetConfig(scope=scope, updated_ms=now_ms(), **update.model_dump())
    value: dict[str, object] = {
        "v": 1,
        "kind": "budget",
        "scope": scope,
        "amount_usd": str(update.amount),
        "period": update.period,
        "thresholds": update.thresholds,
        "forecast_window_minutes": update.forecast_window_minutes,
        "updated_ms": config.updated_ms,
    }
    if update.period == "day":
        value["daily_budget_usd"] = str(update.amount)
    if update.timezone is not None:
        value["timezone"] = update.timezone
    if update.hours is not None:
        value["hours"] = update.hours
    return config, OutRecord(topic, f"budget:{scope}".encode(), orjson.dumps(value))


def budget_tombstone(topic: str, scope: str) -> OutRecord:
    return OutRecord(topic, f"budget:{scope}".encode(), None)


def rule_records(topic: str, rules: list[AlertRule], existing_ids: set[str]) -> list[OutRecord]:
    """Records that make the control topic's rule set equal `rules` (tombstones for the rest)."""
    stamp = now_ms()
    records = [
        OutRecord(
            topic,
            f"rule:{rule.id}".encode(),
            orjson.dumps({"v": 1, "kind": "alert_rule", **rule.model_dump(), "updated_ms": stamp}),
        )
        for rule in rules
    ]
    keep = {rule.id for rule in rules}
    records += [
        OutRecord(topic, f"rule:{rule_id}".encode(), None)
        for rule_id in sorted(existing_ids - keep)
    ]
    return records
