"""The hot path's contract check: a fast test that only passes events `decode_event` accepts.

`quick_valid(obj)` True guarantees that `producers.contract.event_from_object(obj)` would
succeed (it checks a subset of shapes, strictly); False only means "ask the real decoder",
which either accepts the event or gives the DLQ reason. Then `absurd(...)` rejects values
the contract allows but no real product produces. The `data` part of both is
producers/data_check.py, which the SDK's track() runs too.
"""

from __future__ import annotations

from typing import Any

from producers.contract import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS
from producers.data_check import data_absurd, data_valid
from producers.dimensions import MAX_ENVIRONMENT, MAX_TAG_VALUE, MAX_TAGS, TAG_KEY
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
MAX_AGE_MS = 90 * 86_400_000
KNOWN_TAG_KEYS_MAX = 1024
"""Tag keys remembered as valid; at the bound the memo starts over, so keys an attacker
makes up cost memory only up to here and the product's few real keys are soon back in."""
_known_tag_keys: set[str] = set()


def _text(value: Any, low: int, high: int) -> bool:
    return type(value) is str and low <= len(value) <= high


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
        if tags is not None and not _tags_valid(tags):
            return False
    return data_valid(kind, data)


def _tags_valid(tags: Any) -> bool:
    """`producers.dimensions.tags_problem(tags) is None`, with the key regex run once per
    distinct key rather than once per event (it was the costliest part of the check at
    high cardinality: a product has a few tag keys, and every event repeats them)."""
    if type(tags) is not dict or len(tags) > MAX_TAGS:
        return False
    known = _known_tag_keys
    for key, value in tags.items():
        if type(key) is not str:
            return False
        if key not in known:
            if TAG_KEY.fullmatch(key) is None:
                return False
            if len(known) >= KNOWN_TAG_KEYS_MAX:
                known.clear()
            known.add(key)
        if type(value) is not str or not 0 < len(value) <= MAX_TAG_VALUE:
            return False
    return True


def absurd(obj: dict[str, Any], kafka_time_ms: int, max_future_ms: int) -> str | None:
    """Why a contract-valid event is still not believable, or None."""
    ts = obj["timestamp"]
    if kafka_time_ms > 0:
        if ts > kafka_time_ms + max_future_ms:
            return f"timestamp {ts} is more than {max_future_ms} ms after the record's Kafka time"
        if ts < kafka_time_ms - MAX_AGE_MS:
            return f"timestamp {ts} is more than 90 days before the record's Kafka time"
    return data_absurd(obj["type"], obj.get("data") or {})
