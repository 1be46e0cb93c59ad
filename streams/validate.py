"""The hot path's contract check: a fast test that only passes events `decode_event` accepts.

`quick_valid(obj)` True guarantees that `producers.contract.event_from_object(obj)` would
succeed (it checks a subset of shapes, strictly); False only means "ask the real decoder",
which either accepts the event or gives the DLQ reason. Then `absurd(...)` rejects values
the contract allows but no real product produces.
"""

from __future__ import annotations

import math
from typing import Any

from producers.contract import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, PHASES
from producers.dimensions import MAX_ENVIRONMENT, tags_problem
from producers.events import EventType

EVENT_TYPES = frozenset(t.value for t in EventType)
TOP_LEVEL = frozenset(
    {
        "v",
        "type",
        "event_id",
        "timestamp",
        "session_id",
        "user_id",
        "service",
        "environment",
        "tags",
        "data",
    }
)
_PHASES = frozenset(PHASES)
MAX_DURATION_MS = 86_400_000.0  # a day
MAX_TOKENS = 10_000_000
MAX_CALL_NANOUSD = 1_000 * 1_000_000_000  # $1000 for one call
MAX_QUEUE_DEPTH = 1_000_000_000
MAX_AGE_MS = 90 * 86_400_000


def _text(value: Any, low: int, high: int) -> bool:
    return type(value) is str and low <= len(value) <= high


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _millis(value: Any) -> bool:
    t = type(value)
    return (t is float or t is int) and value >= 0 and math.isfinite(value)


def _opt_millis(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    return value is None or _millis(value)


def quick_valid(obj: Any) -> bool:
    if type(obj) is not dict or not obj.keys() <= TOP_LEVEL:
        return False
    if obj.get("v", 1) != 1 or type(obj.get("v", 1)) is not int:
        return False
    kind = obj.get("type")
    ts = obj.get("timestamp")
    user = obj.get("user_id")
    data = obj.get("data", {})
    if not (
        kind in EVENT_TYPES
        and _text(obj.get("event_id"), 1, 64)
        and type(ts) is int
        and MIN_TIMESTAMP_MS <= ts < MAX_TIMESTAMP_MS
        and _text(obj.get("session_id"), 1, 128)
        and (user is None or _text(user, 1, 128))
        and _text(obj.get("service"), 1, 128)
        and type(data) is dict
    ):
        return False
    if "environment" in obj or "tags" in obj:
        env = obj.get("environment")
        tags = obj.get("tags")
        if env is not None and not _text(env, 1, MAX_ENVIRONMENT):
            return False
        if tags is not None and tags_problem(tags) is not None:
            return False
    return _data_valid(kind, data)


def _data_valid(kind: str, d: dict[str, Any]) -> bool:
    if kind == "model_called":
        cost = d.get("cost_nanousd")
        tier = d.get("tier")
        source = d.get("price_source")
        version = d.get("price_version")
        return (
            _text(d.get("model"), 1, 200)
            and (tier is None or type(tier) is str)
            and _count(d.get("input_tokens"))
            and _count(d.get("output_tokens"))
            and _count(d.get("cache_write_tokens", 0))
            and _count(d.get("cache_write_1h_tokens", 0))
            and _count(d.get("cache_read_tokens", 0))
            and (cost is None or _count(cost))
            and type(d.get("priced", True)) is bool
            and (source is None or _text(source, 1, 64))
            and (version is None or _text(version, 1, 128))
            and _opt_millis(d, "duration_ms")
        )
    if kind in ("phase_started", "phase_completed", "phase_failed"):
        return d.get("phase") in _PHASES and _opt_millis(d, "duration_ms")
    if kind in ("generation_completed", "generation_failed"):
        return _opt_millis(d, "duration_ms")
    if kind in ("first_byte", "first_content", "interactive"):
        return _millis(d.get("elapsed_ms"))
    if kind == "quality_scored":
        score: Any = d.get("score")
        conf: Any = d.get("confidence")
        if not _millis(score) or score > 100:
            return False
        return conf is None or (_millis(conf) and conf <= 1)
    if kind == "satisfaction_rated":
        rating = d.get("rating")
        return type(rating) is int and 1 <= rating <= 5
    if kind == "nps_rated":
        score = d.get("score")
        return type(score) is int and 0 <= score <= 10
    if kind == "error_occurred":
        return _text(d.get("error_type"), 1, 200) and _text(d.get("message", ""), 0, 2000)
    if kind.startswith("circuit_breaker_"):
        return _text(d.get("name"), 1, 200)
    if kind == "queue_depth_sampled":
        return _count(d.get("depth"))
    return True


def absurd(obj: dict[str, Any], kafka_time_ms: int, max_future_ms: int) -> str | None:
    """Why a contract-valid event is still not believable, or None."""
    ts = obj["timestamp"]
    if kafka_time_ms > 0:
        if ts > kafka_time_ms + max_future_ms:
            return f"timestamp {ts} is more than {max_future_ms} ms after the record's Kafka time"
        if ts < kafka_time_ms - MAX_AGE_MS:
            return f"timestamp {ts} is more than 90 days before the record's Kafka time"
    d = obj.get("data") or {}
    for key in ("duration_ms", "elapsed_ms"):
        value = d.get(key)
        if value is not None and value > MAX_DURATION_MS:
            return f"data.{key} {value} is more than a day"
    kind = obj["type"]
    if kind == "model_called":
        tokens = d["input_tokens"] + d["output_tokens"]
        tokens += d.get("cache_write_tokens", 0) + d.get("cache_write_1h_tokens", 0)
        tokens += d.get("cache_read_tokens", 0)
        if tokens > MAX_TOKENS:
            return f"{tokens} tokens in one call"
        if (d.get("cost_nanousd") or 0) > MAX_CALL_NANOUSD:
            return f"cost_nanousd {d['cost_nanousd']} is more than $1000 for one call"
    elif kind == "queue_depth_sampled" and d["depth"] > MAX_QUEUE_DEPTH:
        return f"queue depth {d['depth']}"
    return None
