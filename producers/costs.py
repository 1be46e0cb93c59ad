"""CostTracker: prices each model call locally and exactly, reports it, keeps budgets.

record_model_call() prices the call at its time in integer nano-dollars (producers/pricing.py)
and sends one `model_called` event carrying tokens, tier, `cost_nanousd` and the price it
used (`price_source`, `price_version`). A model of no known price is still reported, with
`priced: false` and no cost, so it shows up downstream as unpriced instead of as a silent $0.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from producers.budget import DEFAULT_THRESHOLDS, BudgetCallback, BudgetStatus, budget_control_record
from producers.contract import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS
from producers.events import EventType
from producers.pipeline import Pipeline
from producers.pricing import PriceTable, nanos_to_usd

_MODEL_CALLED = EventType.MODEL_CALLED.value
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
)
_ROW_LEN = 2 + len(_TOKEN_FIELDS) + 1  # calls, tokens by kind, nano-dollars, unpriced calls
_time = time.time


class Budget:
    """Answers from local state fed by the budget-state topic: dict reads, no network."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def allows(self, scope: str = "global") -> bool:
        """False when `scope` or "global" is stopped (spent >= its stop threshold) today."""
        return self._pipeline.budget.allows(scope)

    def status(self, scope: str = "global") -> BudgetStatus | None:
        return self._pipeline.budget.status(scope)


class CostTracker:
    def __init__(self, pipeline: Pipeline, prices: PriceTable) -> None:
        self._pipeline = pipeline
        self.prices = prices
        self.budget = Budget(pipeline)
        self._lock = threading.Lock()
        pipeline.fork_hooks.append(self._renew_lock)
        self._by_model: dict[tuple[str, str | None], list[int]] = {}
        self._by_user: dict[str, list[int]] = {}

    def _renew_lock(self) -> None:  # in a forked child: the parent's lock may be held
        self._lock = threading.Lock()

    def record_model_call(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_write_tokens: int = 0,
        cache_read_tokens: int = 0,
        user_id: str | None = None,
        session_id: str | None = None,
        duration_ms: float | None = None,
        *,
        cache_write_1h_tokens: int = 0,
        timestamp_ms: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> Decimal | None:
        """Report one model call; returns its cost in USD (None when it could not be priced).

        `input_tokens` excludes cache reads and writes; `cache_write_tokens` are 5-minute
        cache writes, `cache_write_1h_tokens` 1-hour ones. The call is priced, and its event
        stamped, at `timestamp_ms` (epoch ms; default now). `tags` add to the client's tags
        for this call's event.
        """
        problems = self._pipeline.problems
        if type(model) is not str or not 0 < len(model) <= 200:
            problems.report("invalid_model", f"model {model!r:.60} is not a 1..200 char string")
            return None
        tokens = (
            input_tokens,
            output_tokens,
            cache_write_tokens,
            cache_write_1h_tokens,
            cache_read_tokens,
        )
        if not (  # one chained test on the hot path; the loop below only names the culprit
            type(input_tokens) is int
            and input_tokens >= 0
            and type(output_tokens) is int
            and output_tokens >= 0
            and type(cache_write_tokens) is int
            and cache_write_tokens >= 0
            and type(cache_write_1h_tokens) is int
            and cache_write_1h_tokens >= 0
            and type(cache_read_tokens) is int
            and cache_read_tokens >= 0
        ):
            for name, count in zip(_TOKEN_FIELDS, tokens, strict=True):
                if type(count) is not int or count < 0:
                    problems.report(
                        "invalid_tokens", f"{name}={count!r:.40} is not an integer >= 0"
                    )
                    break
            return None
        if timestamp_ms is None:
            at = _time()
            at_ms = int(at * 1000)
        elif type(timestamp_ms) is int and MIN_TIMESTAMP_MS <= timestamp_ms < MAX_TIMESTAMP_MS:
            at_ms = timestamp_ms
            at = (at_ms + 0.5) / 1000  # mid-millisecond: the sender's int(at * 1000) is at_ms
        else:
            problems.report(
                "invalid_timestamp", f"timestamp_ms={timestamp_ms!r:.40} is not epoch milliseconds"
            )
            return None
        resolved = self.prices.model(model)
        rates = resolved.rates_at(at_ms)
        tier = resolved.tier
        data: dict[str, Any] = {
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_write_tokens": cache_write_tokens,
            "cache_write_1h_tokens": cache_write_1h_tokens,
            "cache_read_tokens": cache_read_tokens,
        }
        if tier is not None:
            data["tier"] = tier
        if rates is None:
            problems.report("unknown_model", f"model {model!r:.60} has no known price")
            data["priced"] = False
            nanos = 0
        else:
            nanos = rates.cost(*tokens)
            data["cost_nanousd"] = nanos
            data["priced"] = True
            data["price_source"] = rates.source
            data["price_version"] = rates.version
        if duration_ms is not None:
            if (
                isinstance(duration_ms, int | float)
                and math.isfinite(duration_ms)
                and duration_ms >= 0
            ):
                data["duration_ms"] = duration_ms
            else:
                problems.report("invalid_duration", f"duration_ms {duration_ms!r:.40} dropped")
        if not self._pipeline.emit(_MODEL_CALLED, data, session_id, user_id, at, tags):
            return None  # refused (e.g. tags over the limits): not in the local costs either
        self._add(model, tier, user_id, tokens, nanos, rates is not None)
        return None if rates is None else nanos_to_usd(nanos)

    def _add(
        self,
        model: str,
        tier: str | None,
        user_id: str | None,
        tokens: tuple[int, ...],
        nanos: int,
        priced: bool,
    ) -> None:
        with self._lock:
            row = self._by_model.get((model, tier))
            if row is None:
                row = self._by_model[(model, tier)] = [0] * _ROW_LEN
            _accumulate(row, tokens, nanos, priced)
            if user_id is not None:
                user = self._by_user.get(user_id)
                if user is None:
                    if len(self._by_user) >= 100_000:
                        return
                    user = self._by_user[user_id] = [0] * _ROW_LEN
                _accumulate(user, tokens, nanos, priced)

    def get_costs(self) -> dict[str, Any]:
        """This process's calls and spend since start: totals, per model, per user."""
        with self._lock:
            models = {key: list(row) for key, row in self._by_model.items()}
            users = {key: list(row) for key, row in self._by_user.items()}
        total = [0] * _ROW_LEN
        for row in models.values():
            total = [a + b for a, b in zip(total, row, strict=True)]
        return {
            **_row_view(total),
            "unpriced_calls": total[-1],
            "by_model": {
                model: {"tier": tier, **_row_view(row), "unpriced_calls": row[-1]}
                for (model, tier), row in models.items()
            },
            "by_user": {user: _row_view(row) for user, row in users.items()},
        }

    def set_daily_budget(
        self,
        amount_usd: Decimal | int | str | float,
        scope: str = "global",
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    ) -> None:
        """Set a daily budget for a scope via the control topic (set_budget with period="day").

        Raises ValueError for a bad scope, amount or thresholds (configuration, not traffic).
        """
        self.set_budget(amount_usd, scope, thresholds=thresholds)

    def set_budget(
        self,
        amount_usd: Decimal | int | str | float,
        scope: str = "global",
        *,
        period: str = "day",
        timezone: str | None = None,
        hours: int | None = None,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    ) -> None:
        """Set a scope's budget per period: "day", "week" (ISO), "month" in an IANA
        `timezone` (default: the worker's cost time zone), or "rolling" over the last
        `hours`. Scopes: global, user:<id>, service:<name>, tier:<tier>, model:<id or
        tier>, tag:<key>=<value>, environment:<name>. Raises ValueError for bad arguments.
        """
        key, value = budget_control_record(
            scope, amount_usd, thresholds, int(time.time() * 1000), period, timezone, hours
        )
        self._pipeline.sender.send_control(key, value)

    def on_budget_threshold(self, callback: BudgetCallback) -> None:
        """Call `callback(status)` on a helper thread whenever a scope's state rises."""
        self._pipeline.budget.on_threshold(callback)

    def get_budget_status(self, scope: str | None = None) -> dict[str, Any]:
        """Latest published budget state: one scope's dict, or {scope: dict} for all."""
        view = self._pipeline.budget
        if scope is not None:
            status = view.status(scope)
            return status.as_dict() if status else {}
        return {name: status.as_dict() for name, status in view.statuses().items()}


def _accumulate(row: list[int], tokens: tuple[int, ...], nanos: int, priced: bool) -> None:
    row[0] += 1
    row[1] += tokens[0]
    row[2] += tokens[1]
    row[3] += tokens[2]
    row[4] += tokens[3]
    row[5] += tokens[4]
    row[6] += nanos
    if not priced:
        row[7] += 1


def _row_view(row: list[int]) -> dict[str, Any]:
    return {
        "calls": row[0],
        **dict(zip(_TOKEN_FIELDS, row[1:-2], strict=True)),
        "total_cost_nanousd": row[-2],
        "total_cost_usd": str(nanos_to_usd(row[-2])),
    }
