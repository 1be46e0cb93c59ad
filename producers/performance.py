"""PerformanceMonitor: timers, marks and custom metrics, folded locally into sketches.

Every measurement becomes one value in a (name, tags) series; the sender ships the series
as one metric batch per flush. Durations are never also sent as event fields (a
measurement is reported once).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

import orjson

from producers.contract import PHASES
from producers.local_metrics import Series, series_key
from producers.metric_batch import (
    GENERATION_DURATION_MS,
    PHASE_DURATION_MS,
    TIMER_DURATION_MS,
)
from producers.pipeline import Pipeline

P = ParamSpec("P")
R = TypeVar("R")

MAX_OPEN_TIMERS = 10_000
MAX_MARKS = 10_000


class PerformanceMonitor:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        pipeline.fork_hooks.append(self._renew_lock)
        self._timers: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self._marks: OrderedDict[str, float] = OrderedDict()

    # -- timers ---------------------------------------------------------------------------

    def _renew_lock(self) -> None:  # in a forked child: the parent's lock may be held
        self._lock = threading.Lock()

    def start_timer(self, label: str) -> int:
        """Start a named timer; end_timer(id) records it as timer_duration_ms{label}."""
        timer_id = next(self._ids)
        with self._lock:
            self._timers[timer_id] = (str(label), time.perf_counter())
            if len(self._timers) > MAX_OPEN_TIMERS:
                self._timers.popitem(last=False)
                self._pipeline.problems.report(
                    "timer_evicted", f"more than {MAX_OPEN_TIMERS} timers open; oldest dropped"
                )
        return timer_id

    def end_timer(self, timer_id: int) -> float | None:
        """Stop a timer; returns its duration in ms (None for an unknown id)."""
        end = time.perf_counter()
        with self._lock:
            started = self._timers.pop(timer_id, None)
        if started is None:
            self._pipeline.problems.report(
                "unknown_timer", f"end_timer({timer_id!r}) for a timer that is not running"
            )
            return None
        label, begin = started
        ms = (end - begin) * 1000.0
        self._fold(TIMER_DURATION_MS, ms, {"label": label})
        return ms

    def timer(self, label: str) -> Timer:
        """Context manager and decorator (sync or async) recording timer_duration_ms{label}."""
        return Timer(self, label)

    # -- marks ----------------------------------------------------------------------------

    def mark(self, label: str) -> None:
        """Remember now under `label` (for measure())."""
        with self._lock:
            self._marks[str(label)] = time.perf_counter()
            self._marks.move_to_end(str(label))
            if len(self._marks) > MAX_MARKS:
                self._marks.popitem(last=False)

    def measure(self, name: str, start_mark: str, end_mark: str | None = None) -> float | None:
        """ms between two marks (end defaults to now), recorded as timer_duration_ms{name}."""
        now = time.perf_counter()
        with self._lock:
            start = self._marks.get(start_mark)
            end = now if end_mark is None else self._marks.get(end_mark)
        if start is None or end is None:
            missing = start_mark if start is None else end_mark
            self._pipeline.problems.report(
                "unknown_mark", f"measure() with unknown mark {missing!r}"
            )
            return None
        ms = (end - start) * 1000.0
        self._fold(TIMER_DURATION_MS, ms, {"label": name})
        return ms

    # -- direct values --------------------------------------------------------------------

    def record_metric(
        self, name: str, value: float, unit: str = "", tags: Mapping[str, str] | None = None
    ) -> None:
        """Fold one value into the series (name, tags); e.g. time_to_first_byte_ms."""
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            self._pipeline.problems.report("invalid_metric_name", f"metric name {name!r:.60}")
            return
        if not _finite(value):
            self._pipeline.problems.report(
                "invalid_value", f"record_metric({name!r}) with non-finite value {value!r:.40}"
            )
            return
        if unit == "ms" and value < 0:
            self._pipeline.problems.report("invalid_duration", f"negative duration for {name!r}")
            return
        try:
            key = series_key(name, {str(k): str(v) for k, v in tags.items()} if tags else None)
        except AttributeError:
            self._pipeline.problems.report("invalid_tags", "tags must be a mapping of strings")
            return
        self._pipeline.fold(key, float(value), unit)

    def record_phase_time(self, phase: str, duration_ms: float) -> None:
        """One phase's duration: phase_duration_ms{phase}."""
        if phase not in PHASES:
            self._pipeline.problems.report(
                "unknown_phase", f"phase {phase!r:.40} is not one of {', '.join(PHASES)}"
            )
            return
        self._fold(PHASE_DURATION_MS, duration_ms, {"phase": phase})

    def record_generation_time(self, duration_ms: float) -> None:
        """A whole generation's duration: generation_duration_ms."""
        self._fold(GENERATION_DURATION_MS, duration_ms, None)

    def _fold(self, name: str, ms: float, tags: dict[str, str] | None) -> None:
        if not _finite(ms) or ms < 0:
            self._pipeline.problems.report(
                "invalid_duration", f"{name} duration {ms!r:.40} is not a finite number >= 0"
            )
            return
        self._pipeline.fold(series_key(name, tags), float(ms), "ms")

    # -- this process's own view ----------------------------------------------------------

    def get_metrics(self) -> dict[str, dict[str, Any]]:
        """Every series seen by this process: count, sum, min, max, mean, p50, p95, p99."""
        return {
            _display_name(name, tags): _summary(name, dict(tags), series)
            for (name, tags), series in sorted(self._pipeline.metrics.snapshot().items())
        }

    def get_phase_metrics(self) -> dict[str, dict[str, Any]]:
        """Per phase: count and avg/p50/p95/p99/min/max duration in ms."""
        phases: dict[str, dict[str, Any]] = {}
        for (name, tags), series in self._pipeline.metrics.snapshot().items():
            if name == PHASE_DURATION_MS:
                phases[dict(tags).get("phase", "")] = _duration_summary(series)
        return phases

    def get_summary(self) -> dict[str, Any]:
        """Series count, value count, and per-phase plus total-generation durations."""
        snapshot = self._pipeline.metrics.snapshot()
        generation = snapshot.get(series_key(GENERATION_DURATION_MS, None))
        return {
            "series": len(snapshot),
            "values": sum(int(s.sketch.count) for s in snapshot.values()),
            "phases": self.get_phase_metrics(),
            "generation": _duration_summary(generation) if generation else None,
            "open_timers": len(self._timers),
        }

    def export_to_json(self) -> str:
        return orjson.dumps(
            {"summary": self.get_summary(), "metrics": self.get_metrics()},
            option=orjson.OPT_INDENT_2,
        ).decode()


class Timer:
    """`with monitor.timer("x"):`, `async with ...`, `@monitor.timer("x")` (sync or async)."""

    def __init__(self, monitor: PerformanceMonitor, label: str) -> None:
        self._monitor = monitor
        self._label = label
        self._ids: list[int] = []

    def __enter__(self) -> Timer:
        self._ids.append(self._monitor.start_timer(self._label))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ids:
            self._monitor.end_timer(self._ids.pop())

    async def __aenter__(self) -> Timer:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)

    @overload
    def __call__(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, func: Callable[P, Any]) -> Callable[P, Any]:
        monitor, label = self._monitor, self._label
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                timer_id = monitor.start_timer(label)
                try:
                    return await func(*args, **kwargs)
                finally:
                    monitor.end_timer(timer_id)

            return timed_async

        @functools.wraps(func)
        def timed(*args: P.args, **kwargs: P.kwargs) -> Any:
            timer_id = monitor.start_timer(label)
            try:
                return func(*args, **kwargs)
            finally:
                monitor.end_timer(timer_id)

        return cast(Callable[P, Any], timed)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _display_name(name: str, tags: tuple[tuple[str, str], ...]) -> str:
    if not tags:
        return name
    return name + "{" + ",".join(f"{k}={v}" for k, v in tags) + "}"


def _summary(name: str, tags: dict[str, str], series: Series) -> dict[str, Any]:
    sketch = series.sketch
    count = int(sketch.count)
    return {
        "name": name,
        "tags": tags,
        "unit": series.unit,
        "count": count,
        "sum": sketch.sum,
        "min": sketch._min,
        "max": sketch._max,
        "mean": sketch.sum / count if count else None,
        "p50": sketch.get_quantile_value(0.5),
        "p95": sketch.get_quantile_value(0.95),
        "p99": sketch.get_quantile_value(0.99),
    }


def _duration_summary(series: Series) -> dict[str, Any]:
    sketch = series.sketch
    count = int(sketch.count)
    return {
        "count": count,
        "avg_duration_ms": sketch.sum / count if count else None,
        "p50_duration_ms": sketch.get_quantile_value(0.5),
        "p95_duration_ms": sketch.get_quantile_value(0.95),
        "p99_duration_ms": sketch.get_quantile_value(0.99),
        "min_duration_ms": sketch._min,
        "max_duration_ms": sketch._max,
    }
