"""The event vocabulary is the specification's: its 24 EventType values, spelled and ordered
as in shared/seed, and the earlier names decode to them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from producers.contract import decode_event, encode_fields
from producers.events import EVENT_ALIASES, SEED_EVENT_TYPES, EventType, canonical_type

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "000_7594056cd429370a.txt"


def spec_event_types() -> list[str]:
    text = SPEC.read_text()
    enum = re.search(r"enum EventType \{(.*?)\n\}", text, re.S)
    assert enum is not None, "the specification's EventType enum was not found"
    return re.findall(r"^\s*[A-Z_]+ = '([a-z_]+)'", enum.group(1), re.M)


def test_seed_event_types_are_the_specifications_in_order() -> None:
    if not SPEC.exists():
        pytest.fail(f"the specification is missing at {SPEC}")
    names = spec_event_types()
    assert len(names) == 24
    assert [t.value for t in SEED_EVENT_TYPES] == names


def test_every_member_name_is_its_value_upper_cased() -> None:
    for member in EventType:
        assert member.name == member.value.upper()


def test_aliases_decode_to_the_canonical_type() -> None:
    for alias, canonical in EVENT_ALIASES.items():
        assert alias not in {t.value for t in EventType}
        raw = encode_fields(alias, "e-1", 1_764_130_000_000, "s-1", None, "svc", {})
        assert decode_event(raw).type is canonical
        assert canonical_type(alias) == canonical.value
    assert canonical_type("uvp_approved") == "uvp_approved"


@pytest.mark.parametrize("version", [True, 1.0, "1", 2, None])
def test_only_the_integer_1_is_wire_version_1(version: object) -> None:
    import orjson

    from producers.contract import EventDecodeError

    raw = orjson.dumps(
        {
            "v": version,
            "type": "cache_hit",
            "event_id": "e-1",
            "timestamp": 1_764_130_000_000,
            "session_id": "s",
            "service": "svc",
        }
    )
    with pytest.raises(EventDecodeError) as err:
        decode_event(raw)
    assert err.value.reason.value == "unsupported_version"
