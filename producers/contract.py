"""The wire contract between every producer and the worker: `Event`, its JSON encoding, decoding.

Wire format, version 1 (one JSON object per Kafka record, UTF-8)::

    {"v": 1, "event_id": "…", "type": "phase_completed", "timestamp": 1764130000000,
     "session_id": "…", "user_id": "…" | null, "service": "uvp-generator", "data": {…}}

Optional top-level dimensions (additive, still v1): `"environment": "prod"` and
`"tags": {"feature": "uvp"}` (limits in producers.dimensions); absent when unset.

`timestamp` is epoch milliseconds, UTC. `event_id` is unique per event and is what
consumers de-duplicate on. Decoding either returns a fully valid `Event` or raises one
`EventDecodeError` whose `reason` is a short stable code and whose message says what to fix.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from producers.dimensions import environment_problem, tags_problem
from producers.events import EVENT_ALIASES, EventType

WIRE_VERSION = 1
MAX_EVENT_BYTES = 64 * 1024
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TIMESTAMP_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
PHASES: tuple[str, ...] = ("extraction", "analysis", "synthesis", "enhancement")


class DecodeReason(StrEnum):
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    TIMESTAMP_UNIT = "timestamp_unit"


class EventDecodeError(ValueError):
    """Raised for any record that is not a valid event; never a half-built event."""

    def __init__(self, reason: DecodeReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


NonNegInt = Annotated[int, Field(ge=0, strict=True)]
Millis = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Data(BaseModel):
    """Typed `data` of the event kinds the worker aggregates; extra keys are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ModelCallData(_Data):
    model: Annotated[str, Field(min_length=1, max_length=200)]
    tier: str | None = None
    input_tokens: NonNegInt
    output_tokens: NonNegInt
    cache_write_tokens: NonNegInt = 0  # 5-minute cache writes
    cache_write_1h_tokens: NonNegInt = 0
    cache_read_tokens: NonNegInt = 0
    cost_nanousd: NonNegInt | None = None
    priced: bool = True
    price_source: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    price_version: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    duration_ms: Millis | None = None


class PhaseData(_Data):
    phase: Literal["extraction", "analysis", "synthesis", "enhancement"]
    duration_ms: Millis | None = None


class DurationData(_Data):
    duration_ms: Millis | None = None


class MarkData(_Data):
    elapsed_ms: Millis


class QualityData(_Data):
    score: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
    confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


class SatisfactionData(_Data):
    rating: Annotated[int, Field(ge=1, le=5, strict=True)]


class NpsData(_Data):
    score: Annotated[int, Field(ge=0, le=10, strict=True)]


class ErrorData(_Data):
    error_type: Annotated[str, Field(min_length=1, max_length=200)]
    message: Annotated[str, Field(max_length=2000)] = ""


class BreakerData(_Data):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class QueueDepthData(_Data):
    depth: NonNegInt


DATA_SCHEMAS: dict[EventType, type[_Data]] = {
    EventType.MODEL_CALLED: ModelCallData,
    EventType.PHASE_STARTED: PhaseData,
    EventType.PHASE_COMPLETED: PhaseData,
    EventType.PHASE_FAILED: PhaseData,
    EventType.GENERATION_COMPLETED: DurationData,
    EventType.GENERATION_FAILED: DurationData,
    EventType.FIRST_BYTE: MarkData,
    EventType.FIRST_CONTENT: MarkData,
    EventType.INTERACTIVE: MarkData,
    EventType.QUALITY_SCORED: QualityData,
    EventType.SATISFACTION_RATED: SatisfactionData,
    EventType.NPS_RATED: NpsData,
    EventType.ERROR_OCCURRED: ErrorData,
    EventType.CIRCUIT_BREAKER_OPENED: BreakerData,
    EventType.CIRCUIT_BREAKER_HALF_OPENED: BreakerData,
    EventType.CIRCUIT_BREAKER_CLOSED: BreakerData,
    EventType.QUEUE_DEPTH_SAMPLED: QueueDepthData,
}
"""Event types whose `data` has required fields; every other type takes any JSON object."""


def new_event_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    """One thing that happened in the product, as consumers see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: EventType
    event_id: Annotated[str, Field(min_length=1, max_length=64)]
    timestamp: Annotated[int, Field(strict=True)]
    session_id: Annotated[str, Field(min_length=1, max_length=128)]
    user_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    service: Annotated[str, Field(min_length=1, max_length=128)]
    environment: str | None = None
    tags: dict[str, str] | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        problem = None if value is None else environment_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        problem = None if value is None else tags_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("timestamp")
    @classmethod
    def _epoch_millis(cls, value: int) -> int:
        if not MIN_TIMESTAMP_MS <= value < MAX_TIMESTAMP_MS:
            raise ValueError(_timestamp_hint(value))
        return value

    def typed_data(self) -> _Data | None:
        """`data` parsed with its type's schema (None for free-form types)."""
        schema = DATA_SCHEMAS.get(self.type)
        return schema.model_validate(self.data) if schema else None

    def to_wire(self) -> dict[str, Any]:
        wire = {"v": WIRE_VERSION, **self.model_dump(mode="json")}
        for optional in ("environment", "tags"):
            if wire[optional] is None:
                del wire[optional]
        return wire


def _timestamp_hint(value: int) -> str:
    if 0 < value < MIN_TIMESTAMP_MS / 1000 * 100:
        return f"timestamp {value} looks like seconds; send epoch milliseconds (UTC)"
    if value >= MAX_TIMESTAMP_MS:
        return (
            f"timestamp {value} looks like microseconds or nanoseconds; "
            "send epoch milliseconds (UTC)"
        )
    return f"timestamp {value} is outside 2000..2100; send epoch milliseconds (UTC)"


def encode_event(event: Event) -> bytes:
    """Serialise to the v1 wire format."""
    return orjson.dumps(event.to_wire())


def encode_fields(
    event_type: str,
    event_id: str,
    timestamp_ms: int,
    session_id: str,
    user_id: str | None,
    service: str,
    data: dict[str, Any],
    environment: str | None = None,
    tags: dict[str, str] | None = None,
) -> bytes:
    """Serialise without building a model: the SDK's hot path (inputs already checked)."""
    wire: dict[str, Any] = {
        "v": WIRE_VERSION,
        "type": event_type,
        "event_id": event_id,
        "timestamp": timestamp_ms,
        "session_id": session_id,
        "user_id": user_id,
        "service": service,
        "data": data,
    }
    if environment is not None:
        wire["environment"] = environment
    if tags:
        wire["tags"] = tags
    return orjson.dumps(wire)


def decode_event(raw: bytes | str, max_bytes: int = MAX_EVENT_BYTES) -> Event:
    """Parse and fully validate one wire record, or raise `EventDecodeError`."""
    return event_from_object(parse_record(raw, max_bytes))


def parse_record(raw: bytes | str, max_bytes: int = MAX_EVENT_BYTES) -> object:
    """One wire record as parsed JSON (size and syntax checked, contract not yet)."""
    size = len(raw)
    if size > max_bytes:
        raise EventDecodeError(
            DecodeReason.TOO_LARGE, f"record is {size} bytes; the limit is {max_bytes}"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(DecodeReason.NOT_JSON, f"not valid UTF-8 JSON ({exc})") from None


def event_from_object(obj: object) -> Event:
    """Validate an already-parsed JSON value (e.g. one element of an HTTP batch)."""
    if not isinstance(obj, dict):
        raise EventDecodeError(
            DecodeReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}"
        )
    body = dict(obj)
    version = body.pop("v", WIRE_VERSION)
    if type(version) is not int or version != WIRE_VERSION:  # not True, not 1.0
        raise EventDecodeError(
            DecodeReason.UNSUPPORTED_VERSION,
            f"wire version {version!r} is not supported; this decoder reads v{WIRE_VERSION}",
        )
    kind = body.get("type")
    if kind is None:
        raise EventDecodeError(DecodeReason.MISSING_FIELD, "field 'type' is required")
    if isinstance(kind, str) and kind in EVENT_ALIASES:
        kind = body["type"] = EVENT_ALIASES[kind].value
    if not isinstance(kind, str) or kind not in EventType.__members__.values():
        raise EventDecodeError(
            DecodeReason.UNKNOWN_TYPE,
            f"unknown event type {kind!r}; see producers.events.EventType for the list",
        )
    try:
        event = Event.model_validate(body)
    except ValidationError as exc:
        raise _explain(exc) from None
    try:
        event.typed_data()
    except ValidationError as exc:
        raise _explain(exc, prefix="data.") from None
    return event


def _explain(exc: ValidationError, prefix: str = "") -> EventDecodeError:
    first = exc.errors()[0]
    where = prefix + (".".join(str(part) for part in first["loc"]) or "event")
    if first["type"] == "missing":
        return EventDecodeError(DecodeReason.MISSING_FIELD, f"field '{where}' is required")
    message = str(first.get("msg", "invalid"))
    if where == "timestamp" and ("looks like" in message or "outside" in message):
        return EventDecodeError(DecodeReason.TIMESTAMP_UNIT, message.removeprefix("Value error, "))
    return EventDecodeError(DecodeReason.INVALID_FIELD, f"field '{where}': {message}")
