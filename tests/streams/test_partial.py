"""Partials merge exactly in any order and survive their stored form."""

from __future__ import annotations

import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import sketches
from streams.money import ratio_usd, usd
from streams.partial import MODEL_FIELDS, QUALITY_SET, Partial, Targets

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


def textbook_merge(mine: Partial, other: Partial) -> Partial:
    """The merge as first written: every figure added one key at a time, no shortcuts."""
    for ours, theirs in ((mine.count, other.count), (mine.within, other.within),
                         (mine.errors_by_type, other.errors_by_type), (mine.dlq, other.dlq),
                         (mine.upgrades, other.upgrades), (mine.tally, other.tally)):  # fmt: skip
        for k, v in theirs.items():
            ours[k] = ours.get(k, 0) + v
    mine.duplicates += other.duplicates
    for name, sketch in other.sketch.items():
        target = mine.sketch.setdefault(name, sketches.empty())
        if sketch["count"]:
            for k, c in sketch["pos"].items():
                target["pos"][k] = target["pos"].get(k, 0) + c
            for field in ("zero", "count", "sum"):
                target[field] += sketch[field]
            if sketch["min"] < target["min"]:
                target["min"] = sketch["min"]
            if sketch["max"] > target["max"]:
                target["max"] = sketch["max"]
    for model, row in other.models.items():
        if model not in mine.models:
            mine.models[model] = dict(row)
            continue
        for field in MODEL_FIELDS:
            mine.models[model][field] += row[field]
        if mine.models[model]["tier"] is None:
            mine.models[model]["tier"] = row["tier"]
    for field, value in other.quality.items():
        if value and field in QUALITY_SET:
            mine.quality[field] += value
    return mine


def sdk_wire(bins: dict[int, float], zero: float, low: float, high: float, total: float) -> dict:
    count = sum(bins.values()) + zero
    return {"alpha": 0.01, "count": count, "sum": total, "min": low, "max": high,
            "zero": zero, "pos": sorted(bins.items()), "neg": []}  # fmt: skip


wire_sketches = st.builds(
    sdk_wire,
    st.dictionaries(st.integers(-50, 2000), st.one_of(st.integers(1, 9), st.floats(0.5, 9.0))),
    st.sampled_from([0, 0.0, -0.0, 1, 2.0]),
    st.floats(-0.0, 10.0),
    st.floats(0.0, 1e5),
    st.floats(-0.0, 1e6),
)


@st.composite
def partials(draw: st.DrawFn) -> Partial:
    """Partials folded from events, some read back from their stored form, some with SDK
    sketches (float bin counts, a zero count of -0.0) merged in."""
    p = Partial()
    for kind, _user, data in fold(draw(st.integers(0, 10**6)), draw(st.integers(0, 40))):
        p.add_event(kind, data, TARGETS)
    for i, wire in enumerate(draw(st.lists(wire_sketches, max_size=3))):
        p.sketch[f"sdk_{i}"] = sketches.from_wire(wire)
    if draw(st.booleans()):
        p = Partial.from_json(orjson.loads(orjson.dumps(p.to_json())))
    return p


@settings(max_examples=300, deadline=None)
@given(st.lists(partials(), min_size=1, max_size=5))
def test_the_merge_gives_the_textbook_merges_bytes(pieces: list[Partial]) -> None:
    """Byte for byte (0 and 0.0 and -0.0 differ in JSON), into an empty partial and on."""
    fast, slow = Partial(), Partial()
    for piece in pieces:
        fast.merge(piece)
        textbook_merge(slow, piece)
        assert orjson.dumps(fast.to_json()) == orjson.dumps(slow.to_json())
    for name, sketch in fast.sketch.items():
        assert sketch["pos"] is not pieces[0].sketch.get(name, {}).get("pos")  # copied
