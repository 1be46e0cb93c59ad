"""Budgets as the SDK sees them: control records it writes, budget-state records it reads.

The worker owns spend; it publishes one compacted budget-state record per scope
(docs/topics.md). The sender thread follows that topic into `BudgetView`, so
`allows(scope)` is a dict read: no network round trip on the caller's path.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from producers.pricing import nanos_to_usd, usd_to_nanos

log = logging.getLogger("genpulse.sdk")

STATES: tuple[str, ...] = ("ok", "warning", "alert", "critical", "stopped")
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.8, 0.9, 1.0)
_RANK = {state: rank for rank, state in enumerate(STATES)}


@dataclass(frozen=True)
class BudgetStatus:
    """One scope's budget in one period, as last published by the worker."""

    scope: str
    period: str
    state: str
    budget_nanousd: int
    spend_nanousd: int
    percent_used: float
    updated_ms: int
    period_end_ms: int | None = None  # None: a rolling window, or a record of an older worker
    period_kind: str = "day"
    forecast: dict[str, Any] | None = None

    def current(self, now_ms: int, today: str) -> bool:
        """Whether this record still speaks for the period `now_ms` is in."""
        if self.period_end_ms is not None:
            return now_ms < self.period_end_ms
        return self.period_kind.startswith("rolling") or self.period == today

    @property
    def budget_usd(self) -> Decimal:
        return nanos_to_usd(self.budget_nanousd)

    @property
    def spend_usd(self) -> Decimal:
        return nanos_to_usd(self.spend_nanousd)

    @property
    def remaining_usd(self) -> Decimal:
        return nanos_to_usd(self.budget_nanousd - self.spend_nanousd)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "period": self.period,
            "state": self.state,
            "budget_usd": str(self.budget_usd),
            "spend_usd": str(self.spend_usd),
            "remaining_usd": str(self.remaining_usd),
            "percent_used": self.percent_used,
            "budget_nanousd": self.budget_nanousd,
            "spend_nanousd": self.spend_nanousd,
            "updated_ms": self.updated_ms,
            "period_kind": self.period_kind,
            "period_end_ms": self.period_end_ms,
            "forecast": self.forecast,
        }


BudgetCallback = Callable[[BudgetStatus], object]


SCOPE_KINDS = ("user", "service", "tier", "model", "tag", "environment")
PERIODS = ("day", "week", "month", "rolling")


def check_scope(scope: str) -> str:
    if scope == "global":
        return scope
    kind, _, rest = scope.partition(":")
    if kind in SCOPE_KINDS and rest and (kind != "tag" or "=" in rest[1:-1]):
        return scope
    raise ValueError(
        f"budget scope {scope!r} must be 'global' or one of user:<id>, service:<name>, "
        "tier:<tier>, model:<id or tier>, tag:<key>=<value>, environment:<name>"
    )


def budget_control_record(
    scope: str,
    amount_usd: object,
    thresholds: Sequence[float],
    now_ms: int,
    period: str = "day",
    timezone: str | None = None,
    hours: int | None = None,
) -> tuple[bytes, bytes]:
    """(key, value) of the control record that sets a budget (docs/topics.md)."""
    check_scope(scope)
    nanos = usd_to_nanos(amount_usd, "budget")
    if nanos <= 0:
        raise ValueError(f"budget {amount_usd!r} must be more than 0 USD")
    levels = [float(t) for t in thresholds]
    if not 1 <= len(levels) <= 10 or any(not 0 < t <= 10 for t in levels):
        levels = []
    if not levels or levels != sorted(set(levels)):
        raise ValueError(
            f"thresholds {list(thresholds)!r} must be 1..10 ascending fractions of the budget "
            "(the last one stops), e.g. [0.5, 0.8, 0.9, 1.0]"
        )
    if period not in PERIODS:
        raise ValueError(f"period {period!r} must be one of {', '.join(PERIODS)}")
    if (period == "rolling") != (hours is not None):
        raise ValueError("hours= is required for a rolling window and only for it")
    if hours is not None and (type(hours) is not int or not 1 <= hours <= 744):
        raise ValueError(f"hours {hours!r} must be a whole number of hours, 1..744")
    if timezone is not None:
        _zone(timezone)
    amount = format(nanos_to_usd(nanos).normalize(), "f")
    value: dict[str, Any] = {
        "v": 1,
        "kind": "budget",
        "scope": scope,
        "amount_usd": amount,
        "period": period,
        "thresholds": levels,
        "updated_ms": now_ms,
    }
    if period == "day":
        value["daily_budget_usd"] = amount  # the specification's field, for older readers
    if timezone is not None:
        value["timezone"] = timezone
    if hours is not None:
        value["hours"] = hours
    return f"budget:{scope}".encode(), orjson.dumps(value)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {name!r} is unknown; use an IANA name like 'UTC'") from None


def parse_budget_state(value: bytes) -> BudgetStatus:
    """A budget-state record, or ValueError."""
    obj = orjson.loads(value)
    if not isinstance(obj, dict) or obj.get("v") != 1:
        raise ValueError("not a v1 budget-state object")
    state = obj.get("state")
    if state not in _RANK:
        raise ValueError(f"unknown budget state {state!r}")
    return BudgetStatus(
        scope=str(obj["scope"]),
        period=str(obj["period"]),
        state=str(state),
        budget_nanousd=int(obj.get("budget_nanousd", 0)),
        spend_nanousd=int(obj.get("spend_nanousd", 0)),
        percent_used=float(obj.get("percent_used", 0.0)),
        updated_ms=int(obj.get("updated_ms", 0)),
        period_end_ms=None if obj.get("period_end_ms") is None else int(obj["period_end_ms"]),
        period_kind=str(obj.get("period_kind", "day")),
        forecast=obj.get("forecast") if isinstance(obj.get("forecast"), dict) else None,
    )


class Periods:
    """Today's period name ("YYYY-MM-DD") in the configured time zone, recomputed at midnight."""

    def __init__(self, timezone: str) -> None:
        self._tz = _zone(timezone)
        self._period = ""
        self._until = 0.0

    def current(self) -> str:
        now = time.time()
        if now >= self._until:
            today = datetime.fromtimestamp(now, self._tz)
            midnight = datetime(today.year, today.month, today.day, tzinfo=self._tz)
            self._until = (midnight + timedelta(days=1)).timestamp()
            self._period = today.date().isoformat()
        return self._period


class BudgetView:
    """Latest budget-state per scope, read lock-free by callers, written by the sender."""

    def __init__(self, timezone: str) -> None:
        self._periods = Periods(timezone)
        self._states: dict[str, BudgetStatus] = {}
        self._callbacks: list[BudgetCallback] = []
        self._runner = CallbackRunner()
        self.invalid_records = 0

    def allows(self, scope: str = "global") -> bool:
        """False when `scope` or "global" is stopped in the current period (a calendar
        period's stop ends at its end even before the worker says so)."""
        for key in (scope, "global"):
            status = self._states.get(key)
            if (
                status is not None
                and status.state == "stopped"
                and status.current(int(time.time() * 1000), self._periods.current())
            ):
                return False
        return True

    def status(self, scope: str) -> BudgetStatus | None:
        return self._states.get(scope)

    def statuses(self) -> dict[str, BudgetStatus]:
        return dict(self._states)

    def on_threshold(self, callback: BudgetCallback) -> None:
        self._callbacks.append(callback)

    def apply(self, key: bytes | None, value: bytes | None, *, quiet: bool) -> None:
        """Take one budget-state record; fire callbacks when a scope's state rises today.

        Records read while catching up at start (`quiet`) set the baseline without firing.
        """
        if value is None:  # tombstone: the scope's budget was removed
            if key is not None:
                self._states.pop(key.decode(errors="replace"), None)
            return
        try:
            status = parse_budget_state(value)
        except (ValueError, KeyError, TypeError):
            self.invalid_records += 1
            return
        before = self._states.get(status.scope)
        self._states[status.scope] = status
        was = before.state if before is not None and before.period == status.period else "ok"
        if (
            not quiet
            and self._callbacks
            and _RANK[status.state] > _RANK[was]
            and status.current(int(time.time() * 1000), self._periods.current())
        ):
            self._runner.submit(list(self._callbacks), status)

    @property
    def callback_errors(self) -> int:
        return self._runner.errors

    def after_fork(self) -> None:
        self._runner = CallbackRunner()


class CallbackRunner:
    """Runs threshold callbacks on a thread of their own; a failing callback is only counted."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[list[BudgetCallback], BudgetStatus]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.errors = 0

    def submit(self, callbacks: list[BudgetCallback], status: BudgetStatus) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="genpulse-budget-callbacks", daemon=True
                )
                self._thread.start()
        self._queue.put((callbacks, status))

    def _run(self) -> None:
        while True:
            callbacks, status = self._queue.get()
            for callback in callbacks:
                try:
                    callback(status)
                except Exception:
                    self.errors += 1
                    if self.errors == 1:
                        log.exception("genpulse: a budget threshold callback raised (counted)")
