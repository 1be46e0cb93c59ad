"""streams.packed.PackedInts against the plain dict it stands for."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import packed
from streams.packed import PackedInts

# separators and their neighbours, non-ASCII, a lone surrogate, the empty key, and prefixes
# of one another (a key's record must not match inside a longer key's)
KEYS = st.one_of(
    st.sampled_from(["", "user:a", "user:ab", "b", "a\x00b", "\x01", "x\x02", "é", "\ud800"]),
    st.text(max_size=6),
)
VALUES = st.integers(-(10**30), 10**30)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS, VALUES),
        st.tuples(st.just("bump"), KEYS, VALUES),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("get"), KEYS),
    ),
    max_size=300,
)


@settings(max_examples=300)
@given(OPS)
def test_answers_and_contents_as_a_dict(ops: list[tuple[Any, ...]]) -> None:
    got, ref = PackedInts(), {}
    for op in ops:
        key = op[1]
        if op[0] == "add":
            got.add(key, op[2])
            ref[key] = ref.get(key, 0) + op[2]
        elif op[0] == "bump":
            assert got.bump(key, op[2]) == (key in ref)
            if key in ref:
                ref[key] += op[2]
        elif op[0] == "pop":
            assert got.pop(key) == ref.pop(key, None)
        else:
            assert got.get(key) == ref.get(key)
            assert (key in got) == (key in ref)
    assert dict(got.items()) == ref
    assert len(got) == len(ref)


def test_the_buckets_double_and_keep_every_key() -> None:
    got = PackedInts()
    keys = [f"user:user-{n}" for n in range(packed.LOAD * packed.FIRST_BUCKETS * 4 + 1)]
    for n, key in enumerate(keys):
        got.add(key, n)
    assert len(got.buckets) == packed.FIRST_BUCKETS * 8
    assert dict(got.items()) == {key: n for n, key in enumerate(keys)}
    assert got.pop(keys[7]) == 7 and got.get(keys[7]) is None and len(got) == len(keys) - 1
