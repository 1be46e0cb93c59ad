"""The sinks' event decoder: the worker's fast contract check first, the full decoder second.

Why: the sinks read every event the worker reads; full pydantic validation per event cost
them more CPU than the worker spends aggregating it. `streams.validate.quick_valid` only
passes events the full decoder would accept, so those are built without validating again;
anything else goes through `event_from_object`, which accepts it or names the reason.
"""

from __future__ import annotations

from producers.contract import Event, event_from_object, parse_record
from producers.events import EventType
from streams.validate import quick_valid


def decode_for_sinks(raw: bytes, max_bytes: int) -> Event:
    """One wire record as an `Event`, or `EventDecodeError` with the decoder's reason."""
    obj = parse_record(raw, max_bytes)
    if not quick_valid(obj):
        return event_from_object(obj)
    assert isinstance(obj, dict)
    return Event.model_construct(
        type=EventType(obj["type"]),
        event_id=obj["event_id"],
        timestamp=obj["timestamp"],
        session_id=obj["session_id"],
        user_id=obj.get("user_id"),
        service=obj["service"],
        data=obj.get("data", {}),
    )
