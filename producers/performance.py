"""PerformanceMonitor: timers, marks and custom metrics, folded locally into sketches.

The specification's methods are all here in snake_case: start_timer/end_timer, mark/measure,
record_metric, record_phase_time, get_metrics (its PerformanceMetrics), get_phase_metrics,
get_summary, export_to_json, export_to_datadog. Every get_*/export_* answers for this
process; the fleet's figures are the metrics API's (api/client.py).

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
from producers.datadog_export import export_to_dogstatsd
from producers.local_metrics import Series, series_key
from producers.metric_batch import (
    GENERATION_DURATION_MS,
    PHASE_DURATION_MS,
    TIME_TO_COMPLETE_MS,
    TIME_TO_FIRST_BYTE_MS,
    TIME_TO_FIRST_CONTENT_MS,
    TIME_TO_INTERACTIVE_MS,
    TIMER_DURATION_MS,
)
from producers.pipeline import Pipeline
from producers.shapes import DurationSummary, PerformanceMetrics, PerformanceSummary, PhaseMetrics

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

    # -- this process's own view (the specification's get_* and export_*) -------------

    def get_metrics(self) -> PerformanceMetrics:
        """The specification's PerformanceMetrics for this process since its client started.

        Durations are averages of this process's series (total_duration_ms: of
        generation_duration_ms, with its p50/p95/p99 from the sketch, 1 % relative error);
        counts come from the events it tracked. The fleet's: `MetricsClient.performance()`.
        """
        snapshot = self._pipeline.metrics.snapshot()
        counted = self._pipeline.tally()
        tally = counted.by_type

        def mean(name: str, tags: dict[str, str] | None = None) -> float | None:
            series = snapshot.get(series_key(name, tags))
            count = int(series.sketch.count) if series else 0
            return series.sketch.sum / count if series and count else None

        generation = snapshot.get(series_key(GENERATION_DURATION_MS, None))
        sketch = generation.sketch if generation and generation.sketch.count else None
        hits, misses = tally["cache_hit"], tally["cache_miss"]
        started = tally["generation_started"]
        ended = tally["generation_completed"] + tally["generation_failed"]
        ended += tally["generation_canceled"]
        uptime_s = max(time.monotonic() - self._pipeline.started_s, 1e-9)
        phase1, phase2, phase3, phase4 = (mean(PHASE_DURATION_MS, {"phase": p}) for p in PHASES)
        return PerformanceMetrics(
            phase1_duration_ms=phase1,
            phase2_duration_ms=phase2,
            phase3_duration_ms=phase3,
            phase4_duration_ms=phase4,
            total_duration_ms=mean(GENERATION_DURATION_MS),
            time_to_first_byte_ms=mean(TIME_TO_FIRST_BYTE_MS),
            time_to_first_content_ms=mean(TIME_TO_FIRST_CONTENT_MS),
            time_to_interactive_ms=mean(TIME_TO_INTERACTIVE_MS),
            time_to_complete_ms=mean(TIME_TO_COMPLETE_MS),
            cache_hits=hits,
            cache_misses=misses,
            cache_hit_rate=hits / (hits + misses) if hits + misses else None,
            requests_per_second=started / uptime_s,
            concurrent_requests=max(0, started - ended),
            queue_depth=counted.queue_depth,
            p50_duration_ms=sketch.get_quantile_value(0.5) if sketch else None,
            p95_duration_ms=sketch.get_quantile_value(0.95) if sketch else None,
            p99_duration_ms=sketch.get_quantile_value(0.99) if sketch else None,
        )

    def get_series(self) -> dict[str, dict[str, Any]]:
        """Every series this process measured: count, sum, min, max, mean, p50, p95, p99.

        (get_metrics() returned this before it took the specification's shape.)
        """
        return {
            _display_name(name, tags): _summary(name, dict(tags), series)
            for (name, tags), series in sorted(self._pipeline.metrics.snapshot().items())
        }

    def get_phase_metrics(self) -> PhaseMetrics:
        """This process's phases: count and avg/p50/p95/p99/min/max duration in ms."""
        phases: PhaseMetrics = {}
        for (name, tags), series in self._pipeline.metrics.snapshot().items():
            if name == PHASE_DURATION_MS:
                phases[dict(tags).get("phase", "")] = _duration_summary(series)
        return phases

    def get_summary(self) -> PerformanceSummary:
        """This process's series and value counts, phases, generation durations, metrics."""
        snapshot = self._pipeline.metrics.snapshot()
        generation = snapshot.get(series_key(GENERATION_DURATION_MS, None))
        return PerformanceSummary(
            series=len(snapshot),
            values=sum(int(s.sketch.count) for s in snapshot.values()),
            phases=self.get_phase_metrics(),
            generation=_duration_summary(generation) if generation else None,
            open_timers=len(self._timers),
            metrics=self.get_metrics(),
        )

    def export_to_json(self) -> str:
        """This process's summary and every series, as indented JSON."""
        return orjson.dumps(
            {"summary": self.get_summary(), "metrics": self.get_series()},
            option=orjson.OPT_INDENT_2,
        ).decode()

    def export_to_datadog(
        self,
        host: str = "127.0.0.1",
        port: int = 8125,
        *,
        socket_path: str | None = None,
        namespace: str = "genpulse.sdk",
        tags: Mapping[str, str] | None = None,
    ) -> int:
        """Send this process's get_metrics() to a DogStatsD agent as gauges; returns how many
        left. Names are `<namespace>.<field>` (e.g. genpulse.sdk.phase1_duration_ms), tagged
        `service:<service>`; None fields are skipped. Through the `datadog` package's client;
        never raises (an unreachable agent is counted in stats().invalid["datadog_export"]).
        """
        return export_to_dogstatsd(
            self.get_metrics(),
            self._pipeline,
            host=host,
            port=port,
            socket_path=socket_path,
            namespace=namespace,
            tags=tags,
        )


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


def _duration_summary(series: Series) -> DurationSummary:
    sketch = series.sketch
    count = int(sketch.count)
    return DurationSummary(
        count=count,
        avg_duration_ms=sketch.sum / count if count else None,
        p50_duration_ms=sketch.get_quantile_value(0.5),
        p95_duration_ms=sketch.get_quantile_value(0.95),
        p99_duration_ms=sketch.get_quantile_value(0.99),
        min_duration_ms=sketch._min if count else None,
        max_duration_ms=sketch._max if count else None,
    )
