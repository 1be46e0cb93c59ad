"""The cheap check of an event's typed `data`, shared by the SDK's track() and the worker.

`data_valid(kind, data)` True guarantees that the contract's schema for `kind`
(`producers.contract.DATA_SCHEMAS`) accepts `data`; False only means "ask the schema",
which either accepts it or names the field. `data_absurd(kind, data)` then rejects values
the contract allows but no real product produces (a duration of more than a day, ...).
It lives here, not in streams/, so producers can catch bad data where it is made without
importing the worker; streams/validate.py builds its record check on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from producers.contract import DATA_SCHEMAS, PHASES, explain_validation
from producers.events import EventType

MAX_DURATION_MS = 86_400_000.0  # a day
MAX_TOKENS = 10_000_000
MAX_CALL_NANOUSD = 1_000 * 1_000_000_000  # $1000 for one call
MAX_QUEUE_DEPTH = 1_000_000_000
_PHASES = frozenset(PHASES)
ABSURD_VALUE = "absurd_value"


def _text(value: Any, low: int, high: int) -> bool:
    return type(value) is str and low <= len(value) <= high


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _millis(value: Any) -> bool:
    """A duration the contract takes and a product believes: 0 <= value <= a day."""
    t = type(value)
    return (t is float or t is int) and 0 <= value <= MAX_DURATION_MS


def _opt_millis(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    return value is None or _millis(value)


DURATION_KEYS = ("duration_ms", "elapsed_ms", "time_to_first_chunk_ms")


def believable(d: dict[str, Any]) -> bool:
    """Types without required fields: any durations they carry are at most a day."""
    for key in DURATION_KEYS:
        value = d.get(key)
        if (type(value) is float or type(value) is int) and value > MAX_DURATION_MS:
            return False
    return True


def _model_call(d: dict[str, Any]) -> bool:
    cost = d.get("cost_nanousd")
    tier = d.get("tier")
    source = d.get("price_source")
    version = d.get("price_version")
    tokens = (
        d.get("input_tokens"),
        d.get("output_tokens"),
        d.get("cache_write_tokens", 0),
        d.get("cache_write_1h_tokens", 0),
        d.get("cache_read_tokens", 0),
    )
    return (
        _text(d.get("model"), 1, 200)
        and (tier is None or type(tier) is str)
        and all(_count(t) for t in tokens)
        and sum(tokens) <= MAX_TOKENS
        and (cost is None or (_count(cost) and cost <= MAX_CALL_NANOUSD))
        and type(d.get("priced", True)) is bool
        and (source is None or _text(source, 1, 64))
        and (version is None or _text(version, 1, 128))
        and _opt_millis(d, "duration_ms")
        and believable(d)
    )


def _phase(d: dict[str, Any]) -> bool:  # the commonest type: _opt_millis inlined
    ms = d.get("duration_ms")
    return (
        d.get("phase") in _PHASES
        and (ms is None or ((type(ms) is float or type(ms) is int) and 0 <= ms <= MAX_DURATION_MS))
        # other duration keys are absurd past a day too; the usual data has none of them
        and (len(d) == 1 or (len(d) == 2 and ms is not None) or believable(d))
    )


def _duration(d: dict[str, Any]) -> bool:
    return _opt_millis(d, "duration_ms") and believable(d)


def _mark(d: dict[str, Any]) -> bool:
    return _millis(d.get("elapsed_ms")) and _opt_millis(d, "duration_ms") and believable(d)


def _quality(d: dict[str, Any]) -> bool:
    score: Any = d.get("score")
    conf: Any = d.get("confidence")
    if not _millis(score) or score > 100:
        return False
    return (conf is None or (_millis(conf) and conf <= 1)) and believable(d)


def _satisfaction(d: dict[str, Any]) -> bool:
    rating = d.get("rating")
    return type(rating) is int and 1 <= rating <= 5 and believable(d)


def _nps(d: dict[str, Any]) -> bool:
    score = d.get("score")
    return type(score) is int and 0 <= score <= 10 and believable(d)


def _error(d: dict[str, Any]) -> bool:
    return (
        _text(d.get("error_type"), 1, 200)
        and _text(d.get("message", ""), 0, 2000)
        and believable(d)
    )


def _breaker(d: dict[str, Any]) -> bool:
    return _text(d.get("name"), 1, 200) and believable(d)


def _opt(d: dict[str, Any], key: str, check: Callable[[Any], bool]) -> bool:
    value = d.get(key)
    return value is None or check(value)


def _name(value: Any) -> bool:
    return _text(value, 1, 200)


def _reason(value: Any) -> bool:
    return _text(value, 0, 2000)


def _edit(d: dict[str, Any]) -> bool:
    return (
        _opt(d, "field", _name)
        and _opt(d, "from_index", _count)
        and _opt(d, "to_index", _count)
        and _opt(d, "edits_made", _count)
        and believable(d)
    )


def _approval(d: dict[str, Any]) -> bool:
    return _opt(d, "edits_made", _count) and type(d.get("approved", True)) is bool and believable(d)


def _profile(d: dict[str, Any]) -> bool:
    return _opt(d, "profile_id", _name) and believable(d)


def _upgrade(d: dict[str, Any]) -> bool:
    return (
        _opt(d, "from_tier", _name)
        and _opt(d, "to_tier", _name)
        and _opt(d, "reason", _reason)
        and believable(d)
    )


def _stream(d: dict[str, Any]) -> bool:
    return (
        _opt(d, "stream_id", _name)
        and _opt_millis(d, "duration_ms")
        and _opt_millis(d, "time_to_first_chunk_ms")
        and _opt(d, "chunks", _count)
        and believable(d)
    )


def _retry_failed(d: dict[str, Any]) -> bool:
    return _opt(d, "attempts", _count) and believable(d)


def _cancel(d: dict[str, Any]) -> bool:
    return _opt(d, "reason", _reason) and believable(d)


def _ask_schema(d: dict[str, Any]) -> bool:
    """A typed type without a fast check of its own: always the (slow, exact) schema."""
    return False


def _queue_depth(d: dict[str, Any]) -> bool:
    depth: Any = d.get("depth")
    return _count(depth) and depth <= MAX_QUEUE_DEPTH and believable(d)


_E = EventType
FAST_CHECKS: dict[str, Callable[[dict[str, Any]], bool]] = {
    _E.MODEL_CALLED.value: _model_call,
    _E.PHASE_STARTED.value: _phase,
    _E.PHASE_COMPLETED.value: _phase,
    _E.PHASE_FAILED.value: _phase,
    _E.GENERATION_COMPLETED.value: _duration,
    _E.GENERATION_FAILED.value: _duration,
    _E.FIRST_BYTE.value: _mark,
    _E.FIRST_CONTENT.value: _mark,
    _E.INTERACTIVE.value: _mark,
    _E.QUALITY_SCORED.value: _quality,
    _E.SATISFACTION_RATED.value: _satisfaction,
    _E.NPS_RATED.value: _nps,
    _E.ERROR_OCCURRED.value: _error,
    _E.CIRCUIT_BREAKER_OPENED.value: _breaker,
    _E.CIRCUIT_BREAKER_HALF_OPENED.value: _breaker,
    _E.CIRCUIT_BREAKER_CLOSED.value: _breaker,
    _E.QUEUE_DEPTH_SAMPLED.value: _queue_depth,
    _E.UVP_EDITED.value: _edit,
    _E.TRANSFORMATION_EDITED.value: _edit,
    _E.BENEFIT_REORDERED.value: _edit,
    _E.UVP_APPROVED.value: _approval,
    _E.PROFILE_SELECTED.value: _profile,
    _E.PROFILE_DESELECTED.value: _profile,
    _E.MODEL_UPGRADED.value: _upgrade,
    _E.STREAM_STARTED.value: _stream,
    _E.STREAM_COMPLETED.value: _stream,
    _E.RETRY_FAILED.value: _retry_failed,
    _E.GENERATION_CANCELED.value: _cancel,
}
"""One strict check per type with required data fields (keys are the plain type strings).

True means valid for the contract and believable; anything else goes to `data_problem`.
The optional fields of the specification's types (edits, approvals, profiles, upgrades,
streams, retries, cancels) are checked as docs/contract.md types them.
"""
for _kind in DATA_SCHEMAS:  # a schema without a fast check of its own: never a wrong yes
    FAST_CHECKS.setdefault(_kind.value, _ask_schema)


def data_valid(kind: str, data: dict[str, Any]) -> bool:
    """True: the contract's schema accepts `data` and no value in it is absurd."""
    return FAST_CHECKS.get(kind, believable)(data)


def data_absurd(kind: str, d: dict[str, Any]) -> str | None:
    """Why contract-valid `data` is still not believable, or None."""
    for key in DURATION_KEYS:
        value = d.get(key)
        if (type(value) is float or type(value) is int) and value > MAX_DURATION_MS:
            return f"data.{key} {value} is more than a day"
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


def data_problem(kind: str, data: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) the worker would dead-letter `data` of `kind` for, or None.

    The reason is the DLQ's code (missing_field, invalid_field, absurd_value). Slow (runs
    the schema): call it only when `data_valid` says no.
    """
    schema = DATA_SCHEMAS.get(EventType(kind))
    try:
        if schema is not None:
            schema.model_validate(data)
        why = data_absurd(kind, data)
    except ValidationError as exc:
        error = explain_validation(exc, prefix="data.")
        return error.reason.value, f"{kind}: {error.message}"
    return None if why is None else (ABSURD_VALUE, f"{kind}: {why}")
