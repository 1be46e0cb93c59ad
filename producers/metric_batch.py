"""The metric-batch record: one per SDK flush on genpulse.metrics, pre-aggregated in-process.

Wire format, version 1::

    {"v": 1, "kind": "metric_batch", "batch_id": "…", "service": "…",
     "start_ms": 1764130000000, "end_ms": 1764130001000,
     "series": [{"name": "phase_duration_ms", "unit": "ms", "tags": {"phase": "analysis"},
                 "count": 12, "sum": 123.4, "min": 1.0, "max": 40.2, "sketch": {…}}]}

`sketch` is `producers.sketch.sketch_to_wire` output; series with the same (name, tags)
merge exactly across batches, processes and partitions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from ddsketch import DDSketch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from producers.contract import (
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    DecodeReason,
    EventDecodeError,
)
from producers.sketch import SketchFormatError, sketch_from_wire

MAX_BATCH_BYTES = 4 * 1024 * 1024

# Well-known series names (the worker builds its performance views from these).
PHASE_DURATION_MS = "phase_duration_ms"  # tags: phase
GENERATION_DURATION_MS = "generation_duration_ms"
TIME_TO_FIRST_BYTE_MS = "time_to_first_byte_ms"
TIME_TO_FIRST_CONTENT_MS = "time_to_first_content_ms"
TIME_TO_INTERACTIVE_MS = "time_to_interactive_ms"
TIME_TO_COMPLETE_MS = "time_to_complete_ms"
TIMER_DURATION_MS = "timer_duration_ms"  # tags: label (named timers)

Millis = Annotated[int, Field(strict=True, ge=MIN_TIMESTAMP_MS, lt=MAX_TIMESTAMP_MS)]


class MetricSeries(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    unit: Annotated[str, Field(max_length=32)] = ""
    tags: dict[str, str] = Field(default_factory=dict)
    count: Annotated[int, Field(strict=True, gt=0)]
    sum: Annotated[float, Field(allow_inf_nan=False)]
    min: Annotated[float, Field(allow_inf_nan=False)]
    max: Annotated[float, Field(allow_inf_nan=False)]
    sketch: dict[str, Any]

    def to_sketch(self) -> DDSketch:
        """The series' sketch, validated (raises `SketchFormatError`)."""
        return sketch_from_wire(self.sketch)


class MetricBatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    kind: Literal["metric_batch"] = "metric_batch"
    batch_id: Annotated[str, Field(min_length=1, max_length=64)]
    service: Annotated[str, Field(min_length=1, max_length=128)]
    start_ms: Millis
    end_ms: Millis
    series: list[MetricSeries]


def encode_metric_batch(batch: MetricBatch) -> bytes:
    return orjson.dumps(batch.model_dump(mode="json"))


def decode_metric_batch(raw: bytes, max_bytes: int = MAX_BATCH_BYTES) -> MetricBatch:
    """Parse and validate a batch including every sketch, or raise `EventDecodeError`."""
    if len(raw) > max_bytes:
        raise EventDecodeError(
            DecodeReason.TOO_LARGE, f"batch is {len(raw)} bytes; the limit is {max_bytes}"
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(DecodeReason.NOT_JSON, f"not valid UTF-8 JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise EventDecodeError(DecodeReason.NOT_OBJECT, "expected a JSON object")
    try:
        batch = MetricBatch.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = (
            DecodeReason.MISSING_FIELD
            if first["type"] == "missing"
            else (DecodeReason.INVALID_FIELD)
        )
        raise EventDecodeError(reason, f"field '{where}': {first['msg']}") from None
    for i, series in enumerate(batch.series):
        try:
            sketch = series.to_sketch()
        except SketchFormatError as exc:
            raise EventDecodeError(
                DecodeReason.INVALID_FIELD, f"series[{i}].sketch: {exc}"
            ) from None
        if int(sketch.count) != series.count:
            raise EventDecodeError(
                DecodeReason.INVALID_FIELD,
                f"series[{i}]: count {series.count} != sketch count {int(sketch.count)}",
            )
    return batch
