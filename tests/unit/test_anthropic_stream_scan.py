"""The stream scan of the anthropic integration: the same findings however the bytes arrive."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.integrations.anthropic_streams import StreamWatch, stream_usage


class Call:
    started = 0.0
    model = "claude-sonnet-4-5"

    class reporter:
        @staticmethod
        def internal_error(where: str, exc: BaseException) -> None:
            raise AssertionError(f"{where}: {exc!r}")


def sse(deltas: int, output_tokens: int, stop: bool) -> bytes:
    usage = {
        "input_tokens": 900,
        "output_tokens": 1,
        "cache_creation_input_tokens": 700,
        "cache_read_input_tokens": 50,
        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 500},
    }
    message = {"type": "message", "model": "claude-sonnet-4-5-20250929", "usage": usage}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0})] * deltas
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    delta = {"stop_reason": "end_turn" if stop else None}
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}},
        )
    )
    if stop:
        events.append(("message_stop", {"type": "message_stop"}))
    return b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)


def scan(body: bytes, cuts: list[int]) -> StreamWatch:
    watch = StreamWatch(Call(), 0.001)  # type: ignore[arg-type]
    edges = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
    for start, end in itertools.pairwise(edges):
        if end > start:
            watch.feed(body[start:end])
    return watch


@settings(max_examples=200)
@given(
    deltas=st.integers(0, 5),
    output_tokens=st.integers(1, 10_000),
    stop=st.booleans(),
    crlf=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=40),
)
def test_any_chunking_finds_the_same_usage_and_ending(
    deltas: int, output_tokens: int, stop: bool, crlf: bool, cuts: list[int]
) -> None:
    body = sse(deltas, output_tokens, stop)
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    watch = scan(body, cuts)
    assert watch.model == "claude-sonnet-4-5-20250929"
    assert watch.usage is not None
    assert stream_usage(watch.usage) == {
        "input_tokens": 900,
        "output_tokens": output_tokens,  # the last message_delta's cumulative count
        "cache_write_tokens": 200,
        "cache_write_1h_tokens": 500,
        "cache_read_tokens": 50,
    }
    assert watch.stopped is stop
    assert watch.stop_reason == ("end_turn" if stop else None)
    assert (watch.first_content_at is not None) is (deltas > 0)
    assert watch.error_type is None


def test_an_error_event_names_its_type() -> None:
    body = (
        sse(1, 3, False)
        + b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error"}}\n\n'
    )
    assert scan(body, [7, 300]).error_type == "overloaded"
    other = body.replace(b"overloaded_error", b"api_error")
    assert scan(other, []).error_type == "api_error"


def test_usage_without_a_ttl_split_counts_all_writes_as_5_minute_ones() -> None:
    usage = {"input_tokens": 5, "output_tokens": 2, "cache_creation_input_tokens": 40, "x": None}
    assert stream_usage(usage)["cache_write_tokens"] == 40
    assert stream_usage({"input_tokens": -1, "output_tokens": "7"}) == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "cache_read_tokens": 0,
    }
