"""GA4's naming and size rules, enforced before anything is sent (pure logic + properties)."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers.events import EventType
from streams.sinks.ga4 import (
    MAX_EVENTS_PER_REQUEST,
    Ga4Event,
    ga4_session_id,
    name_problem,
    request_body,
    to_ga4,
)
from tests.unit.test_contract import make_event

GA4_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
RESERVED = ("firebase_", "google_", "ga_")


def obeys_ga4(name: str) -> bool:
    """GA4's rule, written independently of the module under test."""
    return bool(GA4_NAME.match(name)) and not name.lower().startswith(RESERVED)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("approve_content", None),
        ("a" * 40, None),
        ("a" * 41, "event_name_too_long"),
        ("", "event_name_empty"),
        ("1st_event", "event_name_invalid_chars"),
        ("_private", "event_name_invalid_chars"),
        ("has-dash", "event_name_invalid_chars"),
        ("has space", "event_name_invalid_chars"),
        ("émoji", "event_name_invalid_chars"),
        ("firebase_x", "event_name_reserved_prefix"),
        ("Google_x", "event_name_reserved_prefix"),
        ("ga_session", "event_name_reserved_prefix"),
        ("session_start", "event_name_reserved"),
        ("error", "event_name_reserved"),
        ("user_engagement", "event_name_reserved"),
    ],
)
def test_event_names(name: str, problem: str | None) -> None:
    assert name_problem(name, "event") == problem


def test_reserved_event_names_are_fine_as_param_names() -> None:
    assert name_problem("error", "param") is None
    assert name_problem("ga_x", "param") == "param_name_reserved_prefix"


@given(st.text(alphabet=string.ascii_letters + string.digits + "_-. é", max_size=60))
def test_accepted_names_obey_ga4(name: str) -> None:
    if name_problem(name, "param") is None:
        assert obeys_ga4(name)
    elif obeys_ga4(name):
        pytest.fail(f"{name!r} obeys GA4's rules but was refused")


@given(st.text(string.digits, min_size=1, max_size=40) | st.text(min_size=1, max_size=128))
def test_session_ids_become_stable_json_safe_numbers(session_id: str) -> None:
    number = ga4_session_id(session_id)
    assert 0 <= number < 2**53
    assert number == ga4_session_id(session_id)


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=300)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


@given(st.dictionaries(st.text(max_size=50), json_values, max_size=40))
def test_any_event_data_maps_to_a_valid_ga4_event(data: dict[str, Any]) -> None:
    mapped = to_ga4(make_event(EventType.UVP_APPROVED, data=data), {})
    assert mapped.event is not None
    params = mapped.event.params
    assert len(params) <= 25
    assert all(obeys_ga4(key) for key in params)
    assert all(
        isinstance(v, int | float | str) and not isinstance(v, bool) for v in params.values()
    )
    assert all(len(v) <= 100 for v in params.values() if isinstance(v, str))
    assert list(params)[:2] == ["session_id", "engagement_time_msec"]


def test_client_id_comes_from_data_then_user_then_session() -> None:
    assert to_ga4(make_event(EventType.UVP_APPROVED, data={"client_id": "c.1"}), {}).event
    mapped = to_ga4(make_event(EventType.UVP_APPROVED, data={"client_id": "c.1"}), {})
    assert mapped.event is not None and mapped.event.client_id == "c.1"
    mapped = to_ga4(make_event(EventType.UVP_APPROVED, user_id="u-9", data={}), {})
    assert mapped.event is not None and mapped.event.client_id == "u-9"
    mapped = to_ga4(make_event(EventType.UVP_APPROVED, user_id=None, session_id="s-7", data={}), {})
    assert mapped.event is not None and (mapped.event.client_id, mapped.event.user_id) == (
        "s-7",
        None,
    )


def test_generation_duration_is_the_engagement_time() -> None:
    mapped = to_ga4(make_event(EventType.GENERATION_COMPLETED, data={"duration_ms": 4200.7}), {})
    assert mapped.event is not None and mapped.event.params["engagement_time_msec"] == 4200


def test_a_renamed_event_that_breaks_the_rules_is_refused() -> None:
    mapped = to_ga4(make_event(EventType.UVP_EDITED, data={}), {"uvp_edited": "google_edit"})
    assert (mapped.event, mapped.rejected) == (None, "event_name_reserved_prefix")


def test_request_body_carries_one_client_and_at_most_25_events() -> None:
    one = Ga4Event("c", None, "uvp_approved", {"session_id": 1, "engagement_time_msec": 1})
    assert request_body([one]) == {
        "client_id": "c",
        "events": [
            {"name": "uvp_approved", "params": {"session_id": 1, "engagement_time_msec": 1}}
        ],
    }
    with pytest.raises(ValueError, match=r"1\.\.25"):
        request_body([one] * (MAX_EVENTS_PER_REQUEST + 1))
    with pytest.raises(ValueError, match="one client"):
        request_body([one, Ga4Event("other", None, "x", {})])
