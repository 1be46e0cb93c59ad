"""Partials merge exactly in any order and survive their stored form."""

from __future__ import annotations

import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import sketches
from streams.money import ratio_usd, usd
from streams.partial import Partial, Targets

TARGETS = Targets()
KINDS = ["generation_started", "model_called", "first_byte", "quality_scored", "nps_rated",
         "phase_completed", "error_occurred", "cache_hit"]  # fmt: skip


def fold(seed: int, n: int) -> list[tuple[str, str | None, dict[str, object]]]:
    rng = random.Random(seed)
    out: list[tuple[str, str | None, dict[str, object]]] = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        user = rng.choice(["a", "b", None])
        data: dict[str, object] = {
            "model_called": {"model": rng.choice("xy"), "input_tokens": rng.randint(0, 99),
                             "output_tokens": 5, "cost_nanousd": rng.randint(0, 10**6),
                             "cache_write_1h_tokens": rng.randint(0, 9)},
            "first_byte": {"elapsed_ms": rng.uniform(0, 2000)},
            "quality_scored": {"score": rng.uniform(0, 100), "confidence": rng.random()},
            "nps_rated": {"score": rng.randint(0, 10)},
            "phase_completed": {"phase": "analysis", "duration_ms": rng.uniform(1, 9000)},
            "error_occurred": {"error_type": rng.choice(["t", "r"])},
        }.get(kind, {})  # fmt: skip
        out.append((kind, user, data))
    return out


def comparable(p: Partial) -> dict[str, object]:
    obj = p.to_json()
    for wire in obj["sketch"].values():
        wire["sum"] = round(wire["sum"], 6)
    obj["quality"] = {k: round(v, 6) for k, v in obj["quality"].items()}
    return orjson.loads(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 4))
def test_merging_parts_equals_folding_everything(seed: int, parts: int) -> None:
    events = fold(seed, 300)
    whole = Partial()
    for kind, _user, data in events:
        whole.add_event(kind, data, TARGETS)
    pieces = [Partial() for _ in range(parts)]
    for i, (kind, _user, data) in enumerate(events):
        pieces[i % parts].add_event(kind, data, TARGETS)
    random.Random(seed).shuffle(pieces)
    merged = Partial()
    for piece in pieces:
        merged.merge(Partial.from_json(orjson.loads(orjson.dumps(piece.to_json()))))
    assert comparable(merged) == comparable(whole)


def test_sketch_matches_ddsketch_and_counts_within_target() -> None:
    values = [random.Random(1).expovariate(1 / 300) for _ in range(5000)]
    mine = sketches.empty()
    for v in values:
        sketches.add(mine, v)
    reference = sketches.to_ddsketch(mine)
    assert sketches.quantile(mine, 0.95) == reference.get_quantile_value(0.95)
    exact = sum(v <= 500 for v in values)
    assert abs(sketches.count_at_most(mine, 500) - exact) <= sum(495 <= v <= 505 for v in values)


def test_money_strings_are_exact() -> None:
    assert usd(51_200_000_000) == "51.2"
    assert usd(1) == "0.000000001"
    assert usd(0) == "0"
    assert ratio_usd(10, 3) == ("0.000000003", 3)


def test_a_model_row_stored_before_cache_write_1h_tokens_merges_as_zero() -> None:
    old = Partial()
    old.add_event("model_called", {"model": "x", "input_tokens": 1, "output_tokens": 1}, TARGETS)
    stored = old.to_json()
    del stored["models"]["x"]["cache_write_1h_tokens"]  # as a row written by an older worker
    new = Partial()
    data = {"model": "x", "input_tokens": 1, "output_tokens": 1, "cache_write_1h_tokens": 7}
    new.add_event("model_called", data, TARGETS)
    merged = Partial.from_json(orjson.loads(orjson.dumps(stored))).merge(new)
    assert merged.models["x"]["cache_write_1h_tokens"] == 7
    assert merged.models["x"]["calls"] == 2
