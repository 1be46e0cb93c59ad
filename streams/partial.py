"""`Partial`: every aggregate of one time bucket from one source partition, mergeable.

A partial holds only sums, counts and sketches, so partials of different partitions, minutes
or workers merge exactly (in any order) into the figures docs/metrics.md defines. The worker
folds events into partials; `streams.reader` merges the stored ones and derives rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
)
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
USER_FIELDS: tuple[str, ...] = ("calls", "tokens", "cost_nanousd", "generations")
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
        "users",
        "within",
    )

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.sketch: dict[str, sketches.Sketch] = {}
        self.within: dict[str, int] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, int]] = {}
        self.quality: dict[str, float] = dict.fromkeys(QUALITY_FIELDS, 0)
        self.errors_by_type: dict[str, int] = {}
        self.dlq: dict[str, int] = {}
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

    def add_event(
        self, kind: str, user: str | None, data: dict[str, Any], targets: Targets
    ) -> None:
        """Fold one valid event (already checked against the contract)."""
        count = self.count
        count[kind] = count.get(kind, 0) + 1
        if kind == "model_called":
            self._model_call(user, data)
        elif kind == "phase_completed" or kind == "phase_failed":
            duration = data.get("duration_ms")
            if duration is not None:
                self.observe(f"phase_duration_ms:{data['phase']}", duration)
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
        elif kind == "generation_started":
            if user is not None:
                self._user(user)["generations"] += 1
        elif kind == "quality_scored":
            self._quality(data)
        elif kind == "satisfaction_rated":
            q = self.quality
            q["satisfaction_count"] += 1
            q["satisfaction_sum"] += data["rating"]
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

    def _user(self, user: str) -> dict[str, int]:
        row = self.users.get(user)
        if row is None:
            row = self.users[user] = dict.fromkeys(USER_FIELDS, 0)
        return row

    def _model_call(self, user: str | None, data: dict[str, Any]) -> None:
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
        if user is not None:
            urow = self._user(user)
            urow["calls"] += 1
            urow["tokens"] += input_tokens + output_tokens
            if priced:
                urow["cost_nanousd"] += cost
        duration = data.get("duration_ms")
        if duration is not None:
            self.observe("model_call_duration_ms", duration)

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
        """Add `other` into self; returns self."""
        _add_counts(self.count, other.count)
        _add_counts(self.within, other.within)
        _add_counts(self.errors_by_type, other.errors_by_type)
        _add_counts(self.dlq, other.dlq)
        self.duplicates += other.duplicates
        for name, sketch in other.sketch.items():
            mine = self.sketch.get(name)
            if mine is None:
                mine = self.sketch[name] = sketches.empty()
            sketches.merge_into(mine, sketch)
        for model, row in other.models.items():
            mine_row = self.models.get(model)
            if mine_row is None:
                self.models[model] = dict(row)
                continue
            for field in MODEL_FIELDS:
                mine_row[field] += row[field]
            if mine_row["tier"] is None:
                mine_row["tier"] = row["tier"]
        for user, urow in other.users.items():
            mine_u = self.users.get(user)
            if mine_u is None:
                self.users[user] = dict(urow)
                continue
            for field in USER_FIELDS:
                mine_u[field] += urow[field]
        for field in QUALITY_FIELDS:
            self.quality[field] += other.quality[field]
        return self

    def is_empty(self) -> bool:
        return not (self.count or self.sketch or self.dlq or self.duplicates)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "count": self.count,
            "sketch": {k: sketches.to_wire(s) for k, s in self.sketch.items()},
            "within": self.within,
            "models": self.models,
            "users": self.users,
            "quality": self.quality,
            "errors_by_type": self.errors_by_type,
            "dlq": self.dlq,
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
        p.users = {k: dict(v) for k, v in obj.get("users", {}).items()}
        p.quality.update(obj.get("quality", {}))
        p.errors_by_type = dict(obj.get("errors_by_type", {}))
        p.dlq = dict(obj.get("dlq", {}))
        p.duplicates = int(obj.get("duplicates", 0))
        return p


def _add_counts(target: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        target[k] = target.get(k, 0) + v
