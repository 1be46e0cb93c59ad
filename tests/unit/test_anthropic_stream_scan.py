"""The stream watch of the anthropic integration: the same findings however the bytes arrive.

The chunks pass through the real body wrapper (as httpx reads it); the deferred report then
parses what the watch kept.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.integrations import anthropic_streams
from producers.integrations.anthropic_streams import StreamWatch, stream_usage, watch_stream

WATCHES = [True, False] if anthropic_streams.use_c(True) else [False]
"""The C watch (when built) and the Python one: each body goes through both, read
synchronously and asynchronously."""
LOOP = asyncio.new_event_loop()
"""Runs the asynchronous reads (one loop for the module: hypothesis makes many)."""


class Reporter:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.usage: dict[str, int] | None = None
        self.model: str | None = None

    def defer(self, job: tuple[Any, ...]) -> None:
        job[0](*job[1:])  # at once: the order is what matters here

    def emit_at(self, call: Any, event_type: str, data: dict[str, Any], at: float) -> None:
        self.events.append((event_type, data))

    def charge(self, call: Any, model: str, usage: dict[str, int], ended: float, at: float) -> None:
        self.model, self.usage = model, usage

    @staticmethod
    def internal_error(where: str, exc: BaseException) -> None:
        raise AssertionError(f"{where}: {exc!r}")

    @staticmethod
    def new_call(started: float, body: Any, attribution: tuple[str | None, str | None]) -> Call:
        return Call()


class Call:
    model = "claude-sonnet-4-5"
    session_id = user_id = None


class Chunks(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Any:
        yield from self.chunks


class AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = 0

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            await asyncio.sleep(0)  # a real suspension between chunks
            yield chunk

    async def aclose(self) -> None:
        self.closed += 1


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


def scan(body: bytes, cuts: list[int]) -> tuple[Reporter, dict[str, Any], StreamWatch]:
    """The body in chunks cut at `cuts`, read to its end through each watch, then closed: the
    watches report the same (but for times); the first one's findings are returned."""
    found = [scan_with(c, body, cuts, a) for c in WATCHES for a in (False, True)]
    anthropic_streams.use_c(True)
    untimed = [
        ([(kind, _untimed(data)) for kind, data in reporter.events], reporter.usage, reporter.model)
        for reporter, _, _ in found
    ]
    assert all(one == untimed[0] for one in untimed)
    return found[0]


def _untimed(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.endswith("_ms")}


def scan_with(
    c: bool, body: bytes, cuts: list[int], asynchronous: bool = False
) -> tuple[Reporter, dict[str, Any], StreamWatch]:
    anthropic_streams.use_c(c)
    edges = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(edges) if b > a]
    reporter = Reporter()
    inner = AsyncChunks(chunks) if asynchronous else Chunks(chunks)
    response = httpx.Response(200, stream=inner)
    watch_stream(reporter, 0.0, {"model": Call.model}, (None, None), None, response)
    watch = response.stream
    assert isinstance(watch, StreamWatch)
    if asynchronous:
        LOOP.run_until_complete(read_async(response, watch, body))
        assert isinstance(inner, AsyncChunks) and inner.closed == 1  # its own close, once
    else:
        assert b"".join(response.iter_raw()) == body  # the caller reads exactly the same bytes
        response.close()
        assert response.stream is inner  # closed: the watch has let go of the response
        watch.close()  # closed again (by whoever still holds it): no error, no second report
    assert [kind for kind, _ in reporter.events].count("stream_completed") == 1
    completed = dict(reporter.events)["stream_completed"]
    return reporter, completed, watch


async def read_async(response: httpx.Response, watch: Any, body: bytes) -> None:
    assert b"".join([chunk async for chunk in response.aiter_raw()]) == body
    await response.aclose()
    assert response.stream is not watch  # closed: the watch has let go of the response
    await watch.aclose()  # closed again: no error, no second report


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
    reporter, completed, watch = scan(body, cuts)
    assert reporter.model == "claude-sonnet-4-5-20250929"
    assert reporter.usage == {
        "input_tokens": 900,
        "output_tokens": output_tokens,  # the last message_delta's cumulative count
        "cache_write_tokens": 200,
        "cache_write_1h_tokens": 500,
        "cache_read_tokens": 50,
    }
    assert completed["outcome"] == ("completed" if stop else "abandoned")
    assert completed.get("stop_reason") == ("end_turn" if stop else None)
    assert (watch.first_content_at is not None) is (deltas > 0)
    assert ("time_to_first_content_ms" in completed) is (deltas > 0)
    assert "error_occurred" not in dict(reporter.events)


def test_an_error_event_names_its_type() -> None:
    body = (
        sse(1, 3, False)
        + b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error"}}\n\n'
    )
    reporter, completed, _ = scan(body, [7, 300])
    assert dict(reporter.events)["error_occurred"]["error_type"] == "overloaded"
    assert completed["outcome"] == "error"
    other = body.replace(b"overloaded_error", b"api_error")
    assert dict(scan(other, [])[0].events)["error_occurred"]["error_type"] == "api_error"


def test_a_long_stream_keeps_a_bounded_tail_and_still_finds_its_end() -> None:
    body = sse(5000, 4321, True)
    reporter, completed, watch = scan(body, list(range(0, len(body), 97)))
    assert reporter.usage is not None and reporter.usage["output_tokens"] == 4321
    assert completed["outcome"] == "completed"
    assert len(watch.tail) <= 32 and len(watch.head) <= 64


def test_a_head_in_tiny_chunks_is_kept_to_its_bound_in_order() -> None:
    """Chunks far smaller than an event (a slow network): the head grows past the C watch's
    inline slots to its bound of 64 chunks without meeting a content delta."""
    body = sse(40, 11, True)
    cuts = [*range(0, 64 * 5, 5), *range(64 * 5, len(body), 60)]  # tiny, then larger
    reporter, completed, watch = scan(body, cuts)
    head = watch.head
    assert len(head) == 64 and len(watch.stamps) == 64
    assert b"".join(head) == body[: 64 * 5]  # the first chunks, in order
    assert watch.stamps == sorted(watch.stamps)
    assert watch.first_content_at is None  # its name arrived after the head's bound
    assert reporter.usage is not None and reporter.usage["output_tokens"] == 11  # the tail's
    assert completed["outcome"] == "completed" and len(watch.tail) == 32


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


def test_the_c_watch_is_built_where_a_compiler_is() -> None:
    """Installing on a machine with a C compiler builds the extension (CI has gcc): the fast
    path is what the benchmark measured, not the fallback."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the Python watch is the one installed")
    assert (
        anthropic_streams.c_extension() is not None
        or os.environ.get("GENPULSE_ANTHROPIC_PURE_PYTHON") == "1"
    )
    assert WATCHES == [True, False]


def test_the_c_and_python_watches_keep_the_same_bounds() -> None:
    """Both watches report from the same head and tail (their bounds are written twice)."""
    fast = anthropic_streams._built
    if fast is None:
        pytest.skip("the C extension is not built (no compiler)")
    assert fast.HEAD_MAX == anthropic_streams._HEAD_MAX_CHUNKS
    assert fast.TAIL_MAX == anthropic_streams._TAIL_CHUNKS
