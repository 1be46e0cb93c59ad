"""`Partial`: every aggregate of one time bucket from one source partition, mergeable.

A partial holds only sums, counts and sketches, so partials of different partitions, minutes
or workers merge exactly (in any order) into the figures docs/metrics.md defines. The worker
folds events into partials; `streams.reader` merges the stored ones and derives rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from producers.sketch import RELATIVE_ACCURACY
from streams import sketches

QUALITY_FIELDS: tuple[str, ...] = (
    "score_count",
    "score_sum",
    "excellent",
    "good",
    "fair",
    "poor",
    "confidence_count",
    "confidence_sum",
    "low_confidence",
    "satisfaction_count",
    "satisfaction_sum",
    "nps_count",
    "promoters",
    "passives",
    "detractors",
    "approved_without_edit",
    "approved_after_edit",
    "regenerated_generations",
    "canceled_generations",
    "canceled_running",
    "upgraded_generations",
    "edited_generations",
    "rejections",
    "satisfaction_1",
    "satisfaction_2",
    "satisfaction_3",
    "satisfaction_4",
    "satisfaction_5",
)
QUALITY_SET = frozenset(QUALITY_FIELDS)
OUTCOMES: tuple[str, ...] = (
    "approved_without_edit",
    "approved_after_edit",
    "regenerated_generations",
    "canceled_generations",
)
"""A generation's outcomes (at most one each); the rest of its generations are still open."""
MODEL_FIELDS: tuple[str, ...] = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "cost_nanousd",
    "unpriced_calls",
    "cache_write_1h_tokens",
)
LOW_CONFIDENCE = 0.70

MARK_SERIES: dict[str, str] = {
    "first_byte": "time_to_first_byte_ms",
    "first_content": "time_to_first_content_ms",
    "interactive": "time_to_interactive_ms",
}


@dataclass(frozen=True)
class Targets:
    """Targets for the 'share within target' figures, in milliseconds."""

    time_to_first_byte_ms: float = 500.0
    time_to_first_content_ms: float = 2000.0
    time_to_interactive_ms: float = 7000.0
    time_to_complete_ms: float = 15000.0

    def as_dict(self) -> dict[str, float]:
        return {
            "time_to_first_byte_ms": self.time_to_first_byte_ms,
            "time_to_first_content_ms": self.time_to_first_content_ms,
            "time_to_interactive_ms": self.time_to_interactive_ms,
            "time_to_complete_ms": self.time_to_complete_ms,
        }


def series_name(name: str, tags: dict[str, str]) -> str:
    """The partial's key for a metric series (see docs/snapshots.md)."""
    if name == "phase_duration_ms":
        return f"phase_duration_ms:{tags.get('phase', 'unknown')}"
    if name == "timer_duration_ms":
        return f"timer_duration_ms:{tags.get('label', 'unnamed')}"
    if name.startswith("time_to_") or name == "generation_duration_ms" or not tags:
        return name
    return name + ":" + ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


class Partial:
    """Sums, counts and sketches of one bucket. Mutable; the worker owns one per row."""

    __slots__ = (
        "count",
        "dlq",
        "duplicates",
        "errors_by_type",
        "models",
        "quality",
        "sketch",
        "tally",
        "upgrades",
        "within",
    )

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.sketch: dict[str, sketches.Sketch] = {}
        self.within: dict[str, int] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.quality: dict[str, float] = dict.fromkeys(QUALITY_FIELDS, 0)
        self.errors_by_type: dict[str, int] = {}
        self.dlq: dict[str, int] = {}
        self.upgrades: dict[str, int] = {}  # "from_tier>to_tier" -> model_upgraded events
        self.tally: dict[str, int] = {}  # named sums: phase failures, stream chunks, attempts
        self.duplicates = 0  # repeated event ids dropped (streams.dedup)

    # -- folding ------------------------------------------------------------------------

    def observe(self, series: str, value: float, targets: Targets | None = None) -> None:
        sketch = self.sketch.get(series)
        if sketch is None:
            sketch = self.sketch[series] = sketches.empty()
        sketches.add(sketch, value)
        if targets is not None:
            target = targets.as_dict().get(series)
            if target is not None and value <= target:
                self.within[series] = self.within.get(series, 0) + 1

    def add_event(self, kind: str, data: dict[str, Any], targets: Targets) -> None:
        """Fold one valid event (already checked against the contract). Per-user figures
        live in the bounded user table (streams.slices), not here."""
        count = self.count
        count[kind] = count.get(kind, 0) + 1
        if kind == "model_called":
            self._model_call(data)
        elif kind == "phase_completed" or kind == "phase_failed":
            duration = data.get("duration_ms")
            if duration is not None:
                self.observe(f"phase_duration_ms:{data['phase']}", duration)
            if kind == "phase_failed":
                self._tally(f"phase_failed:{data['phase']}", 1)
        elif kind in MARK_SERIES:
            self.observe(MARK_SERIES[kind], data["elapsed_ms"], targets)
        elif kind == "generation_completed":
            duration = data.get("duration_ms")
            if duration is not None:
                self.observe("generation_duration_ms", duration)
                self.observe("time_to_complete_ms", duration, targets)
        elif kind == "generation_failed":
            duration = data.get("duration_ms")
            if duration is not None:
                self.observe("generation_duration_ms", duration)
        elif kind == "phase_started":
            self._tally(f"phase_started:{data['phase']}", 1)
        elif kind == "quality_scored":
            self._quality(data)
        elif kind == "satisfaction_rated":
            q = self.quality
            q["satisfaction_count"] += 1
            q["satisfaction_sum"] += data["rating"]
            q[f"satisfaction_{data['rating']}"] += 1
        elif kind == "nps_rated":
            q = self.quality
            score = data["score"]
            q["nps_count"] += 1
            if score >= 9:
                q["promoters"] += 1
            elif score >= 7:
                q["passives"] += 1
            else:
                q["detractors"] += 1
        elif kind == "error_occurred":
            kind_of_error = data["error_type"]
            self.errors_by_type[kind_of_error] = self.errors_by_type.get(kind_of_error, 0) + 1
        elif kind == "stream_completed":
            first_chunk = data.get("time_to_first_chunk_ms")
            if first_chunk is not None:
                self.observe("stream_time_to_first_chunk_ms", first_chunk)
            chunks = data.get("chunks")
            if chunks is not None:
                self._tally("stream_chunks", chunks)
        elif kind == "model_upgraded":
            path = f"{data.get('from_tier') or 'unknown'}>{data.get('to_tier') or 'unknown'}"
            self.upgrades[path] = self.upgrades.get(path, 0) + 1
        elif kind == "retry_failed":
            attempts = data.get("attempts")
            if attempts is not None:
                self._tally("retry_failed_attempts", attempts)

    def _tally(self, name: str, value: int) -> None:
        self.tally[name] = self.tally.get(name, 0) + value

    def _model_call(self, data: dict[str, Any]) -> None:
        model = data["model"]
        row = self.models.get(model)
        if row is None:
            row = self.models[model] = {"tier": data.get("tier"), **dict.fromkeys(MODEL_FIELDS, 0)}
        elif row["tier"] is None and data.get("tier"):
            row["tier"] = data["tier"]
        input_tokens = data["input_tokens"]
        output_tokens = data["output_tokens"]
        raw_cost = data.get("cost_nanousd")
        priced = bool(data.get("priced", True)) and raw_cost is not None
        cost = int(raw_cost) if priced and raw_cost is not None else 0
        row["calls"] += 1
        row["input_tokens"] += input_tokens
        row["output_tokens"] += output_tokens
        row["cache_write_tokens"] += data.get("cache_write_tokens", 0)
        row["cache_write_1h_tokens"] += data.get("cache_write_1h_tokens", 0)
        row["cache_read_tokens"] += data.get("cache_read_tokens", 0)
        if priced:
            row["cost_nanousd"] += cost
        else:
            row["unpriced_calls"] += 1
        duration = data.get("duration_ms")
        if duration is not None:
            self.observe("model_call_duration_ms", duration)
            # per model too, so a model or tier slice has its own (streams.slices.project)
            self.observe("model_call_duration_ms:" + model, duration)

    def _quality(self, data: dict[str, Any]) -> None:
        q = self.quality
        score = data["score"]
        q["score_count"] += 1
        q["score_sum"] += score
        if score >= 90:
            q["excellent"] += 1
        elif score >= 70:
            q["good"] += 1
        elif score >= 50:
            q["fair"] += 1
        else:
            q["poor"] += 1
        confidence = data.get("confidence")
        if confidence is not None:
            q["confidence_count"] += 1
            q["confidence_sum"] += confidence
            if confidence < LOW_CONFIDENCE:
                q["low_confidence"] += 1

    def add_series(self, name: str, sketch: sketches.Sketch, targets: Targets) -> None:
        """Merge one metric-batch series (already validated) into this bucket."""
        current = self.sketch.get(name)
        if current is None:
            current = self.sketch[name] = sketches.empty()
        sketches.merge_into(current, sketch)
        target = targets.as_dict().get(name)
        if target is not None:
            self.within[name] = self.within.get(name, 0) + sketches.count_at_most(sketch, target)

    def add_dlq(self, reason: str) -> None:
        self.dlq[reason] = self.dlq.get(reason, 0) + 1

    # -- merging and the stored form ----------------------------------------------------

    def merge(self, other: Partial) -> Partial:
        """Add `other` into self; returns self. Written out flat: a poll merges hundreds of
        small partials (one per cell, minute and level), so per-call overhead counts."""
        for mine_counts, theirs in (
            (self.count, other.count),
            (self.within, other.within),
            (self.errors_by_type, other.errors_by_type),
            (self.dlq, other.dlq),
            (self.upgrades, other.upgrades),
            (self.tally, other.tally),
        ):
            if not theirs:
                continue
            if not mine_counts:  # integer counts: a copy is the sum
                mine_counts.update(theirs)
                continue
            get = mine_counts.get
            for k, v in theirs.items():
                mine_counts[k] = get(k, 0) + v
        self.duplicates += other.duplicates
        mine_sketches = self.sketch
        for name, sketch in other.sketch.items():
            mine = mine_sketches.get(name)
            if mine is None:
                mine_sketches[name] = sketches.copy(sketch)  # what merging into empty gives
                continue
            if not sketch["count"]:
                continue
            pos = mine["pos"]
            get = pos.get
            for k, c in sketch["pos"].items():
                pos[k] = get(k, 0) + c
            mine["zero"] += sketch["zero"]
            mine["count"] += sketch["count"]
            mine["sum"] += sketch["sum"]
            if sketch["min"] < mine["min"]:
                mine["min"] = sketch["min"]
            if sketch["max"] > mine["max"]:
                mine["max"] = sketch["max"]
        for model, row in other.models.items():
            mine_row = self.models.get(model)
            if mine_row is None:
                self.models[model] = dict(row)
                continue
            for field in MODEL_FIELDS:
                mine_row[field] += row[field]
            if mine_row["tier"] is None:
                mine_row["tier"] = row["tier"]
        quality = self.quality
        for field, value in other.quality.items():
            if value and field in QUALITY_SET:
                quality[field] += value
        return self

    def is_empty(self) -> bool:
        return not (self.count or self.sketch or self.dlq or self.duplicates)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "count": self.count,
            "sketch": {k: _wire(s) for k, s in self.sketch.items()},
            "within": self.within,
            "models": self.models,
            "quality": self.quality,
            "errors_by_type": self.errors_by_type,
            "dlq": self.dlq,
            "upgrades": self.upgrades,
            "tally": self.tally,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Partial:
        p = cls()
        p.count = dict(obj.get("count", {}))
        p.sketch = {k: sketches.from_wire(s) for k, s in obj.get("sketch", {}).items()}
        p.within = dict(obj.get("within", {}))
        # rows stored before a field was added read it as 0
        p.models = {
            k: {**dict.fromkeys(MODEL_FIELDS, 0), **v} for k, v in obj.get("models", {}).items()
        }
        p.quality.update(obj.get("quality", {}))
        p.errors_by_type = dict(obj.get("errors_by_type", {}))
        p.dlq = dict(obj.get("dlq", {}))
        p.upgrades = dict(obj.get("upgrades", {}))
        p.tally = dict(obj.get("tally", {}))
        p.duplicates = int(obj.get("duplicates", 0))
        return p


def _wire(sketch: sketches.Sketch) -> dict[str, Any]:
    """`sketches.to_wire` for orjson only: `pos` as (key, count) tuples, which orjson writes
    as the same arrays (every poll serialises each touched cell row's sketches)."""
    if sketch["count"]:
        low, high = sketch["min"], sketch["max"]
    else:
        low = high = None
    return {
        "alpha": RELATIVE_ACCURACY,
        "count": sketch["count"],
        "sum": sketch["sum"],
        "min": low,
        "max": high,
        "zero": sketch["zero"],
        "pos": sorted(sketch["pos"].items()),
        "neg": [],
    }
