"""Watching one streamed Messages API response: its usage, first content and ending.

The body is wrapped the way httpx wraps it itself (a byte stream around the byte stream), so
the anthropic client reads exactly the bytes it would read without us. The server-sent
events are scanned as they pass; the watch reports once, when the response closes.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Collection, Iterator
from itertools import chain, filterfalse
from typing import Any, Protocol

import httpx
import orjson

_now = time.perf_counter
_time = time.time
_SSE_ERROR_TYPES = {"rate_limit_error": "rate_limit", "overloaded_error": "overloaded"}


class StreamReporter(Protocol):
    def defer(self, job: tuple[Any, ...]) -> None: ...

    def new_call(self, started: float, body: Any, attribution: Attribution) -> StreamCall: ...

    def emit_at(self, call: Any, event_type: str, data: dict[str, Any], at: float) -> None: ...

    def charge(
        self, call: Any, model: str, usage: dict[str, int], ended: float, at: float
    ) -> None: ...

    def internal_error(self, where: str, exc: BaseException) -> None: ...


class StreamCall(Protocol):
    """The call a stream belongs to: its model, who it is for (made on the sender thread,
    unless the call was retried and has its state already)."""

    model: str
    session_id: str | None
    user_id: str | None


Attribution = tuple[str | None, str | None]


def _count(value: Any) -> int:
    """A token count from the wire; anything that is not an int >= 0 counts as none."""
    return value if type(value) is int and value >= 0 else 0


def stream_usage(usage: dict[str, Any]) -> dict[str, int]:
    count = _count
    split = usage.get("cache_creation")
    if isinstance(split, dict):
        write_1h = count(split.get("ephemeral_1h_input_tokens"))
        write_5m = count(split.get("ephemeral_5m_input_tokens"))
    else:
        write_1h, write_5m = 0, count(usage.get("cache_creation_input_tokens"))
    return {
        "input_tokens": count(usage.get("input_tokens")),
        "output_tokens": count(usage.get("output_tokens")),
        "cache_write_tokens": write_5m,
        "cache_write_1h_tokens": write_1h,
        "cache_read_tokens": count(usage.get("cache_read_input_tokens")),
    }


# -- streams ------------------------------------------------------------------------------

_HEAD_MAX_CHUNKS = 64
"""The head ends at the first chunk that starts with a content delta (the API sends one
event a chunk: message_start, a ping, content_block_start, then deltas), or at this many.
(A slice compared, not `in`: `bytes in bytes` first tries the needle as an int and clears
the TypeError, several times the cost of the slice.)"""
_TAIL_CHUNKS = 32
"""The last chunks kept: the stream's last events (message_delta's final usage,
message_stop, an error) are in them; a long stream holds no more."""
_CONTENT = b"content_block_delta"
_CONTENT_EVENT = b"event: " + _CONTENT
_EVENT_LEN = len(_CONTENT_EVENT)


class StreamWatch:
    """What every watch of one stream offers its report (sender thread): the call's details
    travel as one tuple, `info`; `head` (the chunks up to the first content delta), `stamps`
    (when each head chunk arrived) and `tail` (the last chunks) are what it kept.

    Two kinds of watch share it: the C ones (`_anthropic_fast.SyncWatch` and `AsyncWatch`,
    when the extension is built) and the Python one (`_PythonWatch`, without it).
    """

    __slots__ = ()

    info: tuple[StreamReporter, float, Any, Attribution, float]
    """(reporter, started, the model asked for, attribution, headers_at)"""
    call: StreamCall | None
    first_content_at: float | None  # set by the report (sender thread)
    head: list[bytes]
    stamps: list[float]
    tail: Collection[bytes]

    @property
    def reporter(self) -> StreamReporter:
        return self.info[0]

    @property
    def started(self) -> float:
        return self.info[1]

    @property
    def headers_at(self) -> float:
        return self.info[4]

    def the_call(self) -> StreamCall:
        """The call's state (sender thread: made at the first report that needs it)."""
        call = self.call
        if call is None:
            reporter, started, asked, attribution, _ = self.info
            call = reporter.new_call(started, {"model": asked}, attribution)
            self.call = call  # type: ignore[misc]  # (a slot of each kind)
        return call

    def first_byte_ms(self) -> float:
        return (self.headers_at - self.started) * 1000.0


class _PythonWatch(StreamWatch):
    """Keeps references to one stream's first and last chunks; reports once, when it closes.

    On the caller's thread: the head (the chunks up to the first content delta, each with
    its arrival time: message_start, the first content time) runs a short loop; after it,
    each chunk goes to the tail deque by C code alone (`filterfalse` over `deque.append`,
    no Python frame per chunk). The chunks are the bytes objects httpx made, uncopied, and
    their times plain floats in a list (no tuple per chunk: fewer objects for the garbage
    collector to count). Made without `__init__`: `watch_stream` sets its few attributes.
    Parsing the chunks, the call's state and building the events are deferred work
    (`_report`, on the SDK's sender thread). The body wrappers below are the watch itself.
    """

    __slots__ = (
        "_inner",
        "_response",
        "call",
        "first_content_at",
        "head",
        "info",
        "stamps",
        "tail",
    )

    _inner: Any
    _response: httpx.Response | None
    tail: deque[bytes]

    def closed(self) -> None:
        """The first close: report, and leave the response's cycle with the client's `Stream`
        (the watch and its chunks are then freed by the report, not by the garbage
        collector). The exception in flight, if any, goes with the report: an
        `httpx.TransportError` closing us is the stream breaking. Never raises."""
        try:
            response = self._response
            if response is not None:
                self._response = None
                response.stream = self._inner
                self._inner = None  # (httpx's objects are not held until the report)
                self.info[0].defer((_report, self, _now(), sys.exc_info()[1]))
        except Exception as exc:
            self.info[0].internal_error("closing a stream", exc)


def watch_stream(
    reporter: StreamReporter,
    started: float,
    body: Any,
    attribution: Attribution,
    call: StreamCall | None,
    response: httpx.Response,
) -> None:
    """Put a watch between httpx and the response's body (when it is a byte stream), before
    the caller reads a byte of it."""
    if _c is not None:
        _c.watch(response, reporter.defer, reporter, started, body, attribution, call)
        return
    inner = response.stream
    watch: _PythonWatch
    if isinstance(inner, httpx.SyncByteStream):
        watch = _WatchedSyncStream()
    elif isinstance(inner, httpx.AsyncByteStream):
        watch = _WatchedAsyncStream()
    else:
        return
    # the model asked for, not the request: the containers of a request held until the
    # sender runs would make the garbage collector run more often, for the whole process
    asked = body.get("model") if type(body) is dict else None
    watch.info = (reporter, started, asked, attribution, _now())
    watch.call = call
    watch._inner = inner
    watch.head = []
    watch.stamps = []
    watch.tail = deque((), _TAIL_CHUNKS)  # noqa: RUF037 (positional: cheaper)
    watch._response = response  # until it closes: then the body is its own again
    response.stream = watch
    reporter.defer((_report_started, watch))


def c_extension() -> Any:
    """The C module of the caller's-thread paths (`_anthropic_fast`), or None when it is not
    built or not wanted; see use_c()."""
    return _c


def use_c(enabled: bool) -> bool:
    """Use the C paths (when built) or the Python ones, for clients instrumented from now on;
    True when the C ones are in use. (Tests run both; GENPULSE_ANTHROPIC_PURE_PYTHON=1 picks
    Python at start.)"""
    global _c
    _c = _built if enabled else None
    return _c is not None


# -- deferred work (the sender thread) ------------------------------------------------------


class _Seen:
    """What the kept chunks say about the stream."""

    __slots__ = ("error_type", "model", "stop_reason", "stopped", "usage")

    def __init__(self, model: str) -> None:
        self.usage: dict[str, Any] | None = None
        self.model = model
        self.stopped = False
        self.stop_reason: str | None = None
        self.error_type: str | None = None

    def scan(self, chunks: Collection[bytes]) -> None:
        if not chunks:
            return
        data = b"".join(chunks)
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        block = data[: data.rfind(b"\n\n") + 1]  # complete events only (a cut one is not)
        at = block.find(b"event: message_")
        while at >= 0:
            kind = block[at + 15 : at + 20]
            if kind == b"start" or kind == b"delta":
                self._message_event(_event_data(block, at))
            elif kind == b"stop\n":
                self.stopped = True
            at = block.find(b"event: message_", at + 15)
        at = block.find(b"event: error")
        if at >= 0:
            event = _event_data(block, at)
            error = event.get("error") if isinstance(event, dict) else None
            name = error.get("type") if isinstance(error, dict) else None
            self.error_type = _SSE_ERROR_TYPES.get(str(name), "api_error")

    def _message_event(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if data.get("type") == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                usage = message.get("usage")
                self.usage = dict(usage) if isinstance(usage, dict) else {}
                if isinstance(message.get("model"), str):
                    self.model = message["model"]
            return
        usage = data.get("usage")
        if isinstance(usage, dict):
            merged = self.usage if self.usage is not None else {}
            for key, value in usage.items():  # later counts are cumulative: they win
                if value is not None:
                    merged[key] = value
            self.usage = merged
        delta = data.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
            self.stop_reason = delta["stop_reason"]


def wall_of(stamp: float) -> float:
    """The wall time of a monotonic stamp taken moments ago on the caller's thread (one
    clock read less there: the sender thread reads both clocks)."""
    return _time() - (_now() - stamp)


def _report_started(watch: StreamWatch) -> None:
    reporter = watch.reporter
    try:
        at = wall_of(watch.headers_at)
        reporter.emit_at(
            watch.the_call(), "stream_started", {"time_to_first_byte_ms": watch.first_byte_ms()}, at
        )
    except Exception as exc:
        reporter.internal_error("reporting a stream start", exc)


def _report(watch: StreamWatch, closed_at: float, in_flight: BaseException | None) -> None:
    """`in_flight`: the exception being handled when the stream closed (an
    `httpx.TransportError` is the stream breaking: a timeout, a dropped connection)."""
    reporter = watch.reporter
    try:
        call = watch.the_call()
        at = wall_of(closed_at)
        seen = _Seen(call.model)
        seen.scan(watch.head)
        seen.scan(watch.tail)  # (it starts with the head's last chunk)
        call.model = seen.model
        error_type = seen.error_type
        if error_type is None and isinstance(in_flight, httpx.TransportError):
            error_type = "timeout" if isinstance(in_flight, httpx.TimeoutException) else "api_error"
        if error_type is not None:
            outcome = "error"
            message = "the stream ended with an error"
            reporter.emit_at(
                call, "error_occurred", {"error_type": error_type, "message": message}, at
            )
        else:
            outcome = "completed" if seen.stopped else "abandoned"
        if seen.usage is not None:
            reporter.charge(call, seen.model, stream_usage(seen.usage), closed_at, at)
        data: dict[str, Any] = {
            "outcome": outcome,
            "time_to_first_byte_ms": watch.first_byte_ms(),
            "duration_ms": (closed_at - watch.started) * 1000.0,
        }
        first_content_at = _first_content_at(watch)
        watch.first_content_at = first_content_at  # type: ignore[misc]  # (a slot of each kind)
        if first_content_at is not None:
            data["time_to_first_content_ms"] = (first_content_at - watch.started) * 1000.0
        if seen.stop_reason is not None:
            data["stop_reason"] = seen.stop_reason
        reporter.emit_at(call, "stream_completed", data, at)
    except Exception as exc:
        reporter.internal_error("closing a stream", exc)


def _first_content_at(watch: StreamWatch) -> float | None:
    """When the head chunk that completes the first content delta's name arrived."""
    head = watch.head
    joined = b"".join(head)
    found = joined.find(_CONTENT)
    if found < 0:
        return None
    end, offset = found + len(_CONTENT), 0
    for chunk, stamp in zip(head, watch.stamps, strict=True):
        offset += len(chunk)
        if offset >= end:
            return stamp
    return None


def _event_data(block: bytes, at: int) -> Any:
    """The JSON of the `data:` line of the event whose `event:` line starts at `at`."""
    start = block.find(b"\ndata:", at)
    if start < 0:
        return None
    end = block.find(b"\n", start + 6)
    return orjson.loads(block[start + 6 : end if end >= 0 else len(block)])


# -- the body wrappers (the caller's thread, per chunk) --------------------------------------


class _WatchedSyncStream(_PythonWatch, httpx.SyncByteStream):
    __slots__ = ()

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        return chain(self._head(chunks), filterfalse(self.tail.append, chunks))

    def _head(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        head = self.head
        keep, stamp = head.append, self.stamps.append
        for chunk in chunks:
            keep(chunk)
            stamp(_now())
            if chunk[:_EVENT_LEN] == _CONTENT_EVENT or len(head) >= _HEAD_MAX_CHUNKS:
                self.tail.append(chunk)  # the tail starts where the head ends
                yield chunk
                return
            yield chunk

    def close(self) -> None:
        inner = self._inner  # (None once closed)
        try:
            if inner is not None:
                inner.close()
        finally:
            self.closed()


class _WatchedAsyncStream(_PythonWatch, httpx.AsyncByteStream):
    __slots__ = ()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head, stamp, keep = self.head, self.stamps.append, self.tail.append
        looking = True
        async for chunk in self._inner:
            if looking:
                head.append(chunk)
                stamp(_now())
                looking = chunk[:_EVENT_LEN] != _CONTENT_EVENT and len(head) < _HEAD_MAX_CHUNKS
                if not looking:
                    keep(chunk)
            else:
                keep(chunk)
            yield chunk

    async def aclose(self) -> None:
        inner = self._inner  # (None once closed)
        try:
            if inner is not None:
                await inner.aclose()
        finally:
            self.closed()


# -- the C paths (producers/integrations/_anthropic_fast.c) ----------------------------------


def _bound_stream(name: str, base: type) -> type:
    """httpx's own body type, which the C watch checks by identity first (isinstance after)."""
    from httpx import _client

    found = getattr(_client, name, None)
    return found if isinstance(found, type) else base


try:
    from producers.integrations import _anthropic_fast
except ImportError:  # not built (no compiler at install): the Python watch does it all
    _anthropic_fast = None  # type: ignore[assignment]
_built: Any = None
if _anthropic_fast is not None:

    class _CWatchedSyncStream(_anthropic_fast.SyncWatch, StreamWatch, httpx.SyncByteStream):
        """The C watch of a synchronous body (its head, stamps and tail are read as lists)."""

        __slots__ = ()

    class _CWatchedAsyncStream(_anthropic_fast.AsyncWatch, StreamWatch, httpx.AsyncByteStream):
        """The C watch of an asynchronous body: each read is a C awaitable over the body's own."""

        __slots__ = ()

    _anthropic_fast.configure(
        _CWatchedSyncStream,
        _CWatchedAsyncStream,
        httpx.SyncByteStream,
        httpx.AsyncByteStream,
        _bound_stream("BoundSyncStream", httpx.SyncByteStream),
        _bound_stream("BoundAsyncStream", httpx.AsyncByteStream),
        _report_started,
        _report,
    )
    _built = _anthropic_fast
_c: Any = None if os.environ.get("GENPULSE_ANTHROPIC_PURE_PYTHON") == "1" else _built
"""The C paths in use (None: the Python ones); see use_c()."""
