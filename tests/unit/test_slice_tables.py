"""The bounded table rule (docs/slicing.md): how a stream is cut into batches never changes a
table; each value is all in its own row or all in `other`; totals are unchanged; the reader's
merge over partitions lists only values whose figures are exact, in any order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.reader import plan
from streams.slices import N_FIGURES, Merged, Table, add_row, empty_row
from streams.slicing import UnsupportedSlice, Where

VALUES = st.sampled_from([f"u{i}" for i in range(40)])
ROW = st.lists(st.integers(0, 1000), min_size=N_FIGURES, max_size=N_FIGURES).map(
    lambda r: [1 + r[0], *r[1:]]  # every event counts in `events`
)
STREAM = st.lists(st.tuples(VALUES, ROW), max_size=200)


def batches(stream: list[tuple[str, list[int]]], cuts: list[int]) -> list[dict[str, list[int]]]:
    """The stream cut at `cuts`, each piece folded like the worker folds a poll."""
    out, start = [], 0
    for end in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        piece: dict[str, list[int]] = {}
        for value, row in stream[start:end]:
            add_row(piece.setdefault(value, empty_row()), row)
        out.append(piece)
        start = max(start, end)
    return out


def truth(stream: list[tuple[str, list[int]]]) -> dict[str, list[int]]:
    sums: dict[str, list[int]] = {}
    for value, row in stream:
        add_row(sums.setdefault(value, empty_row()), row)
    return sums


@settings(max_examples=300, deadline=None)
@given(STREAM, st.lists(st.integers(0, 10_000), max_size=8), st.integers(1, 45))
def test_batches_do_not_matter_and_each_value_is_whole(
    stream: list[tuple[str, list[int]]], cuts: list[int], k: int
) -> None:
    one_pass = Table(k)
    for value, row in stream:
        one_pass.merge({value: list(row)})
    batched = Table(k)
    for piece in batches(stream, cuts):
        batched.merge(piece)
    assert batched.to_json() == one_pass.to_json()

    sums = truth(stream)
    first_seen = list(dict.fromkeys(v for v, _ in stream))
    assert list(batched.values) == first_seen[:k]  # admitted: the first k distinct values
    other = empty_row()
    for value, row in sums.items():
        if value in batched.values:
            assert batched.values[value] == row  # exact, never partly in `other`
        else:
            add_row(other, row)
    assert batched.other == other  # `other` is exactly what fell out
    assert len(batched.values) <= k
    whole = empty_row()
    for row in sums.values():
        add_row(whole, row)
    assert Merged.of([batched]).total() == whole


@settings(max_examples=200, deadline=None)
@given(st.lists(STREAM, min_size=1, max_size=6), st.integers(1, 20), st.randoms())
def test_merged_lists_only_exact_values_in_any_order(
    partitions: list[list[tuple[str, list[int]]]], k: int, rng: random.Random
) -> None:
    tables = []
    for stream in partitions:
        t = Table(k)
        for piece in batches(stream, [3, 17]):
            t.merge(piece)
        tables.append(t)
    everything = truth([e for stream in partitions for e in stream])
    merged = Merged.of(tables)
    for value, row in merged.values.items():
        assert row == everything[value]  # listed: exact over every partition
    expected_other = empty_row()
    for value, row in everything.items():
        if value not in merged.values:
            add_row(expected_other, row)
    assert merged.other == expected_other
    assert merged.complete == all(not t.other[0] for t in tables)
    shuffled = list(tables)
    rng.shuffle(shuffled)
    again = Merged.of(shuffled)
    assert again.values == merged.values and again.other == merged.other


def test_a_value_that_never_reached_a_full_partition_stays_exact() -> None:
    """The bloom filter tells "absent here" from "maybe in other": a user seen on one
    partition only is exact although the other partitions' tables are full."""
    a, b = Table(2), Table(2)
    a.merge({"x": [1, *[0] * (N_FIGURES - 1)], "y": [2, *[0] * (N_FIGURES - 1)]})
    b.merge({f"z{i}": [1, *[0] * (N_FIGURES - 1)] for i in range(500)})
    assert b.other[0] == 498
    merged = Merged.of([a, b])
    assert "x" in merged.values and "y" in merged.values
    assert not merged.complete
    b_spilled = [v for v in (f"z{i}" for i in range(500)) if v not in b.values]
    assert not any(v in merged.values for v in b_spilled)


def test_stored_form_round_trips() -> None:
    t = Table(1)
    t.merge({"a": [1] * N_FIGURES, "b": [2] * N_FIGURES})
    back = Table.from_json(t.to_json(), 1)
    assert back.to_json() == t.to_json() and back.bloom == t.bloom


EXACT = [
    (Where(), None, "total"),
    (Where(service="a", tier="opus"), None, "cells"),
    (Where(environment="prod"), "model", "cells"),
    (Where(), "service", "cells"),
    (Where(user="u1"), None, "value"),
    (Where(tag=("feature", "uvp")), None, "value"),
    (Where(), "user", "table"),
    (Where(), "tag:feature", "table"),
]


@pytest.mark.parametrize(("where", "group_by", "mode"), EXACT)
def test_exact_combinations(where: Where, group_by: str | None, mode: str) -> None:
    assert plan(where, group_by).mode == mode


@pytest.mark.parametrize(
    ("where", "group_by"),
    [
        (Where(user="u1", tag=("feature", "uvp")), None),
        (Where(user="u1", service="a"), None),
        (Where(tag=("feature", "uvp"), tier="opus"), None),
        (Where(service="a"), "user"),
        (Where(user="u1"), "tag:feature"),
        (Where(user="u1"), "service"),
        (Where(), "tag"),
        (Where(), "colour"),
    ],
)
def test_inexact_combinations_say_why(where: Where, group_by: str | None) -> None:
    with pytest.raises(UnsupportedSlice) as info:
        plan(where, group_by)
    assert "\n" not in str(info.value)
