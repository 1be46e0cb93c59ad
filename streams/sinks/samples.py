"""Datadog metric samples: what one event, one budget-state record or one aggregate view says.

Pure functions, shared by the DogStatsD and the v2 series sinks. Names are
`<namespace>.<what>` with the unit in `unit` (Datadog's unit names); tags are
`key:value` strings with service, env and, where they apply, model and phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from ddsketch.mapping import LogarithmicMapping

from producers.contract import Event
from producers.events import EventType
from producers.metric_batch import MetricBatch
from producers.sketch import RELATIVE_ACCURACY

NANOS_PER_USD = 1_000_000_000


class Kind(StrEnum):
    DISTRIBUTION = "d"
    COUNT = "c"
    GAUGE = "g"


@dataclass(frozen=True)
class Sample:
    name: str  # without the namespace
    kind: Kind
    value: float
    tags: tuple[str, ...]
    unit: str
    timestamp_s: int


MARKS: dict[EventType, str] = {
    EventType.FIRST_BYTE: "time_to_first_byte",
    EventType.FIRST_CONTENT: "time_to_first_content",
    EventType.INTERACTIVE: "time_to_interactive",
}
GENERATION_STATUS: dict[EventType, str] = {
    EventType.GENERATION_STARTED: "started",
    EventType.GENERATION_COMPLETED: "completed",
    EventType.GENERATION_FAILED: "failed",
    EventType.GENERATION_CANCELED: "cancelled",
}


def tag(key: str, value: object) -> str:
    """One Datadog tag; characters Datadog would rewrite anyway become underscores."""
    return _tag(key, str(value))


@lru_cache(maxsize=8192)  # the same few services, models and phases come with every event
def _tag(key: str, value: str) -> str:
    text = value.lower()
    clean = "".join(c if c.isalnum() or c in "_-./:" else "_" for c in text)
    return f"{key}:{clean[:190]}"


def samples_from_event(event: Event, env: str) -> list[Sample]:
    """The per-event values Datadog should see: durations as distributions, counts."""
    base = (tag("service", event.service), tag("env", env))
    ts = event.timestamp // 1000
    data = event.data
    out: list[Sample] = []

    def add(name: str, kind: Kind, value: float, unit: str, *extra: str) -> None:
        out.append(Sample(name, kind, float(value), base + extra, unit, ts))

    kind = event.type
    if kind in GENERATION_STATUS:
        add("generation.count", Kind.COUNT, 1, "generation", tag("status", GENERATION_STATUS[kind]))
        if kind is EventType.GENERATION_COMPLETED and _number(data.get("duration_ms")):
            # as the worker does: a completed generation's duration is its time to complete
            add("generation.duration", Kind.DISTRIBUTION, data["duration_ms"], "millisecond")
            add("time_to_complete", Kind.DISTRIBUTION, data["duration_ms"], "millisecond")
    elif kind is EventType.PHASE_COMPLETED and _number(data.get("duration_ms")):
        phase = tag("phase", data["phase"])
        add("phase.duration", Kind.DISTRIBUTION, data["duration_ms"], "millisecond", phase)
    elif kind is EventType.PHASE_FAILED:
        add("phase.failed", Kind.COUNT, 1, "error", tag("phase", data["phase"]))
    elif kind in MARKS:
        add(MARKS[kind], Kind.DISTRIBUTION, data["elapsed_ms"], "millisecond")
    elif kind is EventType.MODEL_CALLED:
        out.extend(_model_call(event, base, ts))
    elif kind in (EventType.CACHE_HIT, EventType.CACHE_MISS):
        result = "hit" if kind is EventType.CACHE_HIT else "miss"
        add("cache.lookups", Kind.COUNT, 1, "request", tag("result", result))
    elif kind is EventType.ERROR_OCCURRED:
        add("errors", Kind.COUNT, 1, "error", tag("error_type", data["error_type"]))
    elif kind is EventType.QUALITY_SCORED:
        add("quality.score", Kind.DISTRIBUTION, data["score"], "")
    elif kind in (EventType.RETRY_ATTEMPTED, EventType.FALLBACK_TRIGGERED):
        add(kind.value.replace("_", "."), Kind.COUNT, 1, "")
    return out


def _model_call(event: Event, base: tuple[str, ...], ts: int) -> list[Sample]:
    data = event.data
    tags = (*base, tag("model", data["model"]))
    if data.get("tier"):
        tags = (*tags, tag("tier", data["tier"]))
    tokens_in, tokens_out = float(data["input_tokens"]), float(data["output_tokens"])
    out = [
        Sample("model.calls", Kind.COUNT, 1.0, tags, "request", ts),
        Sample("model.tokens", Kind.COUNT, tokens_in, (*tags, "kind:input"), "token", ts),
        Sample("model.tokens", Kind.COUNT, tokens_out, (*tags, "kind:output"), "token", ts),
    ]
    cost = data.get("cost_nanousd")
    if isinstance(cost, int) and data.get("priced", True):
        out.append(Sample("model.cost", Kind.COUNT, cost / NANOS_PER_USD, tags, "dollar", ts))
    if _number(data.get("duration_ms")):
        duration = float(data["duration_ms"])
        out.append(Sample("model.duration", Kind.DISTRIBUTION, duration, tags, "millisecond", ts))
    return out


SERIES_NAMES: dict[str, str] = {
    "phase_duration_ms": "phase.duration",
    "generation_duration_ms": "generation.duration",
    "time_to_first_byte_ms": "time_to_first_byte",
    "time_to_first_content_ms": "time_to_first_content",
    "time_to_interactive_ms": "time_to_interactive",
    "time_to_complete_ms": "time_to_complete",
    "timer_duration_ms": "timer.duration",
}
"""SDK metric-batch series -> the names the same measurement has when it comes as an event."""

_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)


def sketch_values(wire: dict[str, Any]) -> list[tuple[float, int]]:
    """(value, count) per populated bin of a wire sketch; each value within 1 % of the
    observations it stands for (6 significant digits keep datagrams short)."""
    out: list[tuple[float, int]] = []
    if zero := round(wire.get("zero", 0)):
        out.append((0.0, zero))
    for sign, store in ((1.0, "pos"), (-1.0, "neg")):
        for key, count in wire.get(store, []):
            out.append((sign * float(f"{_MAPPING.value(int(key)):.6g}"), round(count)))
    return out


def samples_from_metric_batch(batch: MetricBatch, env: str) -> list[Sample]:
    """One distribution sample per observation the SDK folded into a batch's sketches, as if
    the service had sent each to DogStatsD itself (values at the sketch's 1 % accuracy)."""
    ts = batch.end_ms // 1000
    base = (tag("service", batch.service), tag("env", env))
    out: list[Sample] = []
    for series in batch.series:
        name = SERIES_NAMES.get(series.name) or "custom." + "".join(
            c if c.isalnum() or c in "_." else "_" for c in series.name
        )
        tags = base + tuple(tag(k, v) for k, v in sorted(series.tags.items()))
        unit = "millisecond" if series.unit == "ms" else series.unit
        for value, count in sketch_values(series.sketch):
            out.extend([Sample(name, Kind.DISTRIBUTION, value, tags, unit, ts)] * count)
    return out


def samples_from_budget_state(record: dict[str, Any], env: str) -> list[Sample]:
    """Budget percent and spend per scope, from one `<prefix>.budget-state` record."""
    ts = int(record["updated_ms"]) // 1000
    tags = (tag("env", env), tag("scope", record["scope"]))
    percent = float(record["percent_used"])
    spend = int(record["spend_nanousd"]) / NANOS_PER_USD
    return [
        Sample("budget.percent_used", Kind.GAUGE, percent, tags, "percent", ts),
        Sample("budget.spend", Kind.GAUGE, spend, tags, "dollar", ts),
    ]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
