"""Event dimensions (environment, tags): one set of limits for the SDK, the decoder and the
worker's fast check; over a limit is refused, never cut."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.contract import EventDecodeError, decode_event, encode_fields, event_from_object
from producers.dimensions import tags_problem
from streams.budget_scopes import budget_scopes
from streams.validate import quick_valid


def wire(**extra: Any) -> dict[str, Any]:
    return {
        "v": 1, "type": "model_called", "event_id": "e1", "timestamp": 1_764_130_000_000,
        "session_id": "s1", "user_id": "u1", "service": "gen",
        "data": {"model": "claude-x", "tier": "sonnet", "input_tokens": 1, "output_tokens": 1,
                 "cost_nanousd": 5},
        **extra,
    }  # fmt: skip


def test_dimensions_round_trip_and_are_absent_when_unset() -> None:
    tags = {"feature": "uvp", "team": "growth"}
    event = event_from_object(wire(environment="prod", tags=tags))
    assert event.environment == "prod" and event.tags == tags
    assert event.to_wire()["tags"] == tags
    plain = event_from_object(wire()).to_wire()
    assert "tags" not in plain and "environment" not in plain
    fast = encode_fields("model_called", "e1", 1_764_130_000_000, "s1", "u1", "gen",
                         wire()["data"], "prod", tags)  # fmt: skip
    assert orjson.loads(fast) == event.to_wire()
    assert quick_valid(orjson.loads(fast))


@pytest.mark.parametrize(
    "tags",
    [{f"k{i}": "v" for i in range(11)}, {"Team": "x"}, {"k" * 41: "x"}, {"team": "x" * 101},
     {"team": ""}, {"team": 3}, {"": "x"}, {"a b": "x"}],
)  # fmt: skip
def test_over_the_limits_is_refused_by_all_three(tags: dict[str, Any]) -> None:
    obj = wire(tags=tags)
    assert tags_problem(tags) is not None
    assert not quick_valid(obj)
    with pytest.raises(EventDecodeError) as exc:
        decode_event(orjson.dumps(obj))
    assert exc.value.reason.value == "invalid_field"


@given(
    st.dictionaries(
        st.text(alphabet="abcXyz0_.- ", max_size=42),
        st.one_of(st.text(max_size=102), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        max_size=12,
    ),
    st.one_of(st.none(), st.text(max_size=66)),
)
def test_the_fast_check_and_the_decoder_agree(tags: dict[str, Any], env: str | None) -> None:
    obj = wire(tags=tags) if env is None else wire(tags=tags, environment=env)
    try:
        decode_event(orjson.dumps(obj))
        accepted = True
    except EventDecodeError:
        accepted = False
    assert accepted == (tags_problem(tags) is None and (env is None or 0 < len(env) <= 64))
    if quick_valid(obj):
        assert accepted


def test_a_call_counts_under_every_scope_it_belongs_to() -> None:
    obj = wire(environment="prod", tags={"team": "growth"})
    assert budget_scopes(obj, obj["data"]) == [
        "global", "service:gen", "user:u1", "tier:sonnet", "model:sonnet", "model:claude-x",
        "environment:prod", "tag:team=growth",
    ]  # fmt: skip
    same = {**obj["data"], "model": "sonnet"}
    assert budget_scopes(wire(), same).count("model:sonnet") == 1
