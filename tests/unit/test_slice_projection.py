"""Model and tier slices are projections of a partial (streams.slices.project): for any
filter, the projection equals folding only the events that match it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.partial import Partial, Targets
from streams.slices import Wanted, project

MODELS = [("m-haiku", "haiku"), ("m-sonnet", "sonnet"), ("m-odd", None), ("m-opus2", "opus")]
CALL = st.builds(
    lambda m, i, o, cost, d: (
        "model_called",
        {"model": m[0], "tier": m[1], "input_tokens": i, "output_tokens": o,
         "cost_nanousd": cost, "priced": cost is not None, "duration_ms": d},
    ),
    st.sampled_from(MODELS), st.integers(0, 5000), st.integers(0, 5000),
    st.one_of(st.none(), st.integers(0, 10**9)), st.floats(1, 60_000),
)  # fmt: skip
OTHER = st.one_of(
    st.just(("generation_started", {})),
    st.builds(lambda d: ("generation_completed", {"duration_ms": d}), st.floats(1, 60_000)),
    st.builds(lambda d: ("first_byte", {"elapsed_ms": d}), st.floats(1, 5000)),
    st.just(("error_occurred", {"error_type": "timeout"})),
)
FILTER = st.sampled_from([False, None, "m-haiku", "m-odd", "nope"])
TIER = st.sampled_from([False, None, "haiku", "opus", "nope"])


def matches(kind: str, data: dict[str, Any], model: Wanted, tier: Wanted) -> bool:
    m = data.get("model") if kind == "model_called" else None
    t = data.get("tier") if kind == "model_called" else None
    return (model is False or model == m) and (tier is False or tier == t)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(CALL, OTHER), max_size=60), FILTER, TIER)
def test_projection_equals_folding_the_matching_events(
    events: list[tuple[str, dict[str, Any]]], model: Wanted, tier: Wanted
) -> None:
    whole, wanted = Partial(), Partial()
    for kind, data in events:
        whole.add_event(kind, data, Targets())
        if matches(kind, data, model, tier):
            wanted.add_event(kind, data, Targets())
    got = project(whole, model, tier).to_json()
    assert got == wanted.to_json()
