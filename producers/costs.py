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
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar, cast, overload

from producers.budget import (
    DEFAULT_THRESHOLDS,
    BudgetCallback,
    BudgetStatus,
    Periods,
    budget_control_record,
    check_scope,
)
from producers.contract import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS
from producers.events import EventType
from producers.pipeline import Pipeline
from producers.pricing import PriceTable, nanos_to_usd
from producers.shapes import BudgetStatusView, CostMetrics, DailyCostSummary, Tokens

_MODEL_CALLED = EventType.MODEL_CALLED.value
MAX_USERS = 100_000
"""Users with a row of their own in get_costs(); later ones count only in the totals."""
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
)
_ROW_LEN = 2 + len(_TOKEN_FIELDS) + 1  # calls, tokens by kind, nano-dollars, unpriced calls
_time = time.time
NANOS, UNPRICED = _ROW_LEN - 2, _ROW_LEN - 1  # row indexes; 0 is calls, 1..5 the tokens


class Budget:
    """Answers from local state fed by the budget-state topic: dict reads, no network."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def allows(self, scope: str = "global") -> bool:
        """False when `scope` or "global" is stopped (spent >= its stop threshold) today."""
        return self._pipeline.budget.allows(scope)

    def status(self, scope: str = "global") -> BudgetStatus | None:
        return self._pipeline.budget.status(scope)

    def on_threshold(self, callback: BudgetCallback) -> None:
        """`callback(percent, status)` once per threshold any scope crosses today, in order."""
        self._pipeline.budget.on_threshold(callback)


class CostTracker:
    def __init__(self, pipeline: Pipeline, prices: PriceTable) -> None:
        self._pipeline = pipeline
        self.prices = prices
        self.budget = Budget(pipeline)
        self._lock = threading.Lock()
        pipeline.fork_hooks.append(self._renew_lock)
        self._by_model: dict[tuple[str, str | None], list[int]] = {}
        self._by_user: dict[str, list[int]] = {}
        self._periods = Periods(pipeline.settings.cost_timezone)
        self._day = ""
        self._day_start: tuple[dict[tuple[str, str | None], list[int]], dict[str, list[int]]]
        self._day_start = {}, {}

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
        day = self._periods.current()
        with self._lock:
            if day != self._day:  # today's figures are the running ones minus these
                self._day = day
                self._day_start = _copy_rows(self._by_model), _copy_rows(self._by_user)
            row = self._by_model.get((model, tier))
            if row is None:
                row = self._by_model[(model, tier)] = [0] * _ROW_LEN
            _accumulate(row, tokens, nanos, priced)
            if user_id is not None:
                user = self._by_user.get(user_id)
                if user is None:
                    if len(self._by_user) >= MAX_USERS:
                        return
                    user = self._by_user[user_id] = [0] * _ROW_LEN
                _accumulate(user, tokens, nanos, priced)

    def get_costs(self) -> CostMetrics:
        """The specification's CostMetrics: this process's calls, tokens and spend since start,
        per tier (haiku, sonnet, opus; by_tier has every tier), per model and per user. The
        budget fields are the fleet's global budget today, as the worker last published it
        (None until it has). The fleet's spend: `MetricsClient.costs()`.
        """
        self._pipeline.deferred.run()  # calls an integration observed (producers/deferred.py)
        with self._lock:
            models = {key: list(row) for key, row in self._by_model.items()}
            users = {key: list(row) for key, row in self._by_user.items()}
        total = _sum_rows(models.values())
        tiers = _by_tier(models)
        budget = self._pipeline.budget.status("global")
        today = budget is not None and budget.period == self._periods.current()
        user_count = len(users)
        user_tokens = sum(sum(row[1:NANOS]) for row in users.values())
        per_user = _sum_rows(users.values())[NANOS] // user_count if user_count else 0

        def tier(name: str) -> list[int]:
            return tiers.get(name, [0] * _ROW_LEN)

        haiku, sonnet, opus = tier("haiku"), tier("sonnet"), tier("opus")
        return CostMetrics(
            haiku_calls=haiku[0],
            sonnet_calls=sonnet[0],
            opus_calls=opus[0],
            total_calls=total[0],
            haiku_tokens=Tokens(input=haiku[1], output=haiku[2]),
            sonnet_tokens=Tokens(input=sonnet[1], output=sonnet[2]),
            opus_tokens=Tokens(input=opus[1], output=opus[2]),
            haiku_cost_nanousd=haiku[NANOS],
            sonnet_cost_nanousd=sonnet[NANOS],
            opus_cost_nanousd=opus[NANOS],
            haiku_cost_usd=str(nanos_to_usd(haiku[NANOS])),
            sonnet_cost_usd=str(nanos_to_usd(sonnet[NANOS])),
            opus_cost_usd=str(nanos_to_usd(opus[NANOS])),
            total_cost_usd=str(nanos_to_usd(total[NANOS])),
            total_cost_nanousd=total[NANOS],
            user_count=user_count,
            cost_per_user_nanousd=per_user,
            cost_per_user_usd=str(nanos_to_usd(per_user)),
            average_tokens_per_user=user_tokens / user_count if user_count else None,
            daily_budget_usd=str(budget.budget_usd) if budget and today else None,
            daily_spend_usd=str(budget.spend_usd) if budget and today else None,
            budget_remaining_usd=str(budget.remaining_usd) if budget and today else None,
            percent_used=budget.percent_used if budget and today else None,
            calls=total[0],
            input_tokens=total[1],
            output_tokens=total[2],
            cache_write_tokens=total[3],
            cache_write_1h_tokens=total[4],
            cache_read_tokens=total[5],
            unpriced_calls=total[UNPRICED],
            by_tier={name: _row_view(row) for name, row in tiers.items()},
            by_model={
                model: {"tier": tier, **_row_view(row), "unpriced_calls": row[UNPRICED]}
                for (model, tier), row in models.items()
            },
            by_user={user: _row_view(row) for user, row in users.items()},
        )

    def get_daily_costs(self) -> DailyCostSummary:
        """The specification's DailyCostSummary: this process's calls of today (the day in
        GENPULSE_COST_TIMEZONE, as the worker's). The fleet's: `MetricsClient.daily_costs()`.
        """
        self._pipeline.deferred.run()
        day = self._periods.current()
        with self._lock:
            if day == self._day:
                models = _minus(self._by_model, self._day_start[0])
                users = len(_minus(self._by_user, self._day_start[1]))
            else:
                models, users = {}, 0
        total = _sum_rows(models.values())
        per_user = total[NANOS] // users if users else 0
        return DailyCostSummary(
            date=day,
            total_calls=total[0],
            total_tokens=sum(total[1:NANOS]),
            total_cost_nanousd=total[NANOS],
            total_cost_usd=str(nanos_to_usd(total[NANOS])),
            unpriced_calls=total[UNPRICED],
            by_tier={name: _row_view(row) for name, row in _by_tier(models).items()},
            user_count=users,
            cost_per_user_usd=str(nanos_to_usd(per_user)),
        )

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

    def on_budget_threshold(
        self, callback: Callable[[float], object], scope: str = "global"
    ) -> None:
        """Call `callback(percent)` once per threshold `scope`'s spend crosses today (50, 80,
        90, 100 by default), in order, even when one call crosses several; fleet-wide spend,
        as the worker publishes it. Runs on a helper thread; a raising callback is counted in
        stats().callback_errors. For every scope with its status: `budget.on_threshold`.
        """
        check_scope(scope)

        def for_scope(percent: float, status: BudgetStatus) -> None:
            if status.scope == scope:
                callback(percent)

        self._pipeline.budget.on_threshold(for_scope)

    @overload
    def get_budget_status(self, scope: str) -> BudgetStatusView: ...
    @overload
    def get_budget_status(self, scope: None = None) -> dict[str, BudgetStatusView]: ...
    def get_budget_status(
        self, scope: str | None = None
    ) -> BudgetStatusView | dict[str, BudgetStatusView]:
        """The specification's BudgetStatus of `scope` (empty before the worker published it),
        or {scope: status} of every scope: the fleet's spend as last published."""
        view = self._pipeline.budget
        if scope is not None:
            status = view.status(scope)
            return cast(BudgetStatusView, status.as_dict()) if status else BudgetStatusView()
        return {
            name: cast(BudgetStatusView, status.as_dict())
            for name, status in view.statuses().items()
        }


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


K = TypeVar("K")


def _copy_rows(rows: dict[K, list[int]]) -> dict[K, list[int]]:
    return {key: list(row) for key, row in rows.items()}


def _minus(now: dict[K, list[int]], before: dict[K, list[int]]) -> dict[K, list[int]]:
    """The rows that grew since `before`, by how much."""
    out: dict[K, list[int]] = {}
    for key, row in now.items():
        earlier = before.get(key)
        grown = row if earlier is None else [a - b for a, b in zip(row, earlier, strict=True)]
        if grown[0]:
            out[key] = list(grown)
    return out


def _sum_rows(rows: Iterable[list[int]]) -> list[int]:
    total = [0] * _ROW_LEN
    for row in rows:
        total = [a + b for a, b in zip(total, row, strict=True)]
    return total


def _by_tier(models: dict[tuple[str, str | None], list[int]]) -> dict[str, list[int]]:
    tiers: dict[str, list[int]] = {}
    for (_, tier), row in models.items():
        if tier is not None:
            tiers[tier] = _sum_rows([tiers.get(tier, [0] * _ROW_LEN), row])
    return tiers


def _row_view(row: list[int]) -> dict[str, Any]:
    return {
        "calls": row[0],
        **dict(zip(_TOKEN_FIELDS, row[1:-2], strict=True)),
        "total_cost_nanousd": row[-2],
        "total_cost_usd": str(nanos_to_usd(row[-2])),
    }
