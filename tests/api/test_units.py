"""Pure parts of the API: batch parsing and sorting, export layout, time ranges, notices."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import ApiError
from api.export_format import csv_lines, flatten
from api.ingest import BodyError, parse_batch, sort_events
from api.live import notice_version
from api.timerange import Window, duration_ms, time_range
from producers.settings import GenPulseSettings
from tests.api.test_collect import event

SETTINGS = GenPulseSettings(topic_prefix="unit")


def test_batches_are_arrays_or_an_events_object() -> None:
    assert parse_batch(b"[1, 2]", 5) == [1, 2]
    assert parse_batch(b'{"events": [3]}', 5) == [3]
    for body, error in ((b"{", "invalid_json"), (b"{}", "invalid_body"), (b"7", "invalid_body")):
        with pytest.raises(BodyError) as caught:
            parse_batch(body, 5)
        assert caught.value.error == error and caught.value.status == 400
    with pytest.raises(BodyError) as caught:
        parse_batch(b"[1, 2, 3]", 2)
    assert caught.value.status == 413


# what orjson can hand the API (it parses larger integers as floats)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.lists(json_values | st.just(event()), max_size=20))
def test_every_item_is_either_accepted_or_dead_lettered_never_lost(items: list[object]) -> None:
    outcome = sort_events(items, SETTINGS, origin="test", now_ms=1)
    assert outcome.accepted + len(outcome.rejected) == len(items)
    assert len(outcome.records) == len(items)
    dead = [r for r in outcome.records if r.topic == "unit.dlq"]
    assert len(dead) == len(outcome.rejected)
    assert [r.index for r in outcome.rejected] == sorted(r.index for r in outcome.rejected)
    for record in dead:
        assert orjson.loads(record.value or b"")["reason"]


@given(json_values)
def test_flatten_keeps_every_leaf_once(value: object) -> None:
    leaves = list(flatten({"root": value}))
    paths = [path for path, _ in leaves]
    assert len(paths) == len(set(paths)) or any(p.count(".") for p in paths)
    assert all(not isinstance(v, dict | list) for _, v in leaves)


def test_csv_cells_parse_back() -> None:
    text = csv_lines([("a", None, True, 0.1, 'say "hi", ok')]).decode()
    assert next(csv.reader(io.StringIO(text))) == ["a", "", "true", "0.1", 'say "hi", ok']


def test_durations_and_windows() -> None:
    assert duration_ms("90s") == 90_000 and duration_ms("7d") == 7 * 86_400_000
    assert duration_ms("0m") is None and duration_ms("1w") is None
    span = time_range(window=Window.ONE_DAY)
    assert span.end_ms - span.start_ms == 86_400_000
    moment = datetime(2026, 11, 26, tzinfo=UTC)
    assert time_range(None, moment, moment + timedelta(hours=2)).end_ms == (
        int(moment.timestamp() * 1000) + 7_200_000
    )
    for window, start, end in (
        (None, None, moment),  # 'to' without 'from'
        (Window.ONE_HOUR, moment, None),  # both a window and 'from'
        (None, moment, moment),  # empty
        (None, moment.replace(tzinfo=None), None),  # no zone
        (None, moment - timedelta(days=91), moment),  # too long
    ):
        with pytest.raises(ApiError) as caught:
            time_range(window, start, end)
        assert caught.value.status == 422


def test_notice_versions() -> None:
    assert notice_version(b'{"kind": "updated", "written_ms": 17}') == 17
    assert notice_version(b"42") == 42
    assert notice_version(b"updated") is None
    assert notice_version(b'{"written_ms": true}') is None
