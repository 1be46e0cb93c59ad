"""Watching one streamed Messages API response: its usage, first content and ending.

The body is wrapped the way httpx wraps it itself (a byte stream around the byte stream), so
the anthropic client reads exactly the bytes it would read without us. The server-sent
events are scanned as they pass; the watch reports once, when the response closes.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx
import orjson

_now = time.perf_counter
_UNINTERESTING_EVENTS = frozenset((b"ping", b"content_block_start", b"content_block_stop"))
_SSE_ERROR_TYPES = {"rate_limit_error": "rate_limit", "overloaded_error": "overloaded"}


class StreamReporter(Protocol):
    def event(self, call: Any, event_type: str, data: dict[str, Any]) -> None: ...

    def charge(self, call: Any, model: str, usage: dict[str, int]) -> None: ...

    def internal_error(self, where: str, exc: BaseException) -> None: ...


class StreamCall(Protocol):
    """The call a stream belongs to: when it started, its model, who reports it."""

    started: float
    model: str

    @property
    def reporter(self) -> StreamReporter: ...


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


class StreamWatch:
    """Scans one stream's server-sent events as they pass; reports once, when it closes.

    Only complete events (up to the last blank line) are scanned; the rest waits for the next
    chunk. Only `message_start`, `message_delta` and `error` data are parsed, so the cost per
    chunk is a few `bytes.find` calls.
    """

    __slots__ = (
        "call",
        "error_type",
        "first_content_at",
        "headers_at",
        "model",
        "reported",
        "stop_reason",
        "stopped",
        "tail",
        "usage",
    )

    def __init__(self, call: StreamCall, headers_at: float) -> None:
        self.call = call
        self.headers_at = headers_at
        self.tail = b""
        self.usage: dict[str, Any] | None = None
        self.model = call.model
        self.first_content_at: float | None = None
        self.stopped = False
        self.stop_reason: str | None = None
        self.error_type: str | None = None
        self.reported = False

    def wrap(self, response: httpx.Response) -> bool:
        """Put the watch between httpx and the response's body; False if it cannot be."""
        inner = response.stream
        if isinstance(inner, httpx.AsyncByteStream):
            response.stream = _WatchedAsyncStream(inner, self)
        elif isinstance(inner, httpx.SyncByteStream):
            response.stream = _WatchedSyncStream(inner, self)
        else:
            return False
        return True

    def first_byte_ms(self) -> float:
        return (self.headers_at - self.call.started) * 1000.0

    def feed(self, chunk: bytes) -> None:
        if (  # the common chunk: one whole event, so its name says whether to look inside
            not self.tail
            and chunk.endswith(b"\n\n")
            and chunk.startswith(b"event: ")
            and chunk.find(b"\nevent:", 7) < 0
        ):
            name = chunk[7 : chunk.find(b"\n")]
            if name == b"content_block_delta":
                if self.first_content_at is None:
                    self.first_content_at = _now()
                return
            if name in _UNINTERESTING_EVENTS:
                return
        try:
            data = self.tail + chunk if self.tail else chunk
            if b"\r" in data:  # CRLF lines; a CR left at the end waits in the tail for its LF
                data = data.replace(b"\r\n", b"\n")
            end = data.rfind(b"\n\n")
            if end < 0:
                self.tail = data if len(data) < 1 << 20 else b""
                return
            self.tail = data[end + 2 :]
            self._scan(data[: end + 1])
        except Exception as exc:
            self.call.reporter.internal_error("reading a stream", exc)

    def _scan(self, block: bytes) -> None:
        if self.first_content_at is None and b"event: content_block_delta" in block:
            self.first_content_at = _now()
        at = block.find(b"event: message_")
        while at >= 0:
            kind = block[at + 15 : at + 20]
            if kind == b"start" or kind == b"delta":
                self._message_event(_event_data(block, at))
            elif kind == b"stop\n":
                self.stopped = True
            at = block.find(b"event: message_", at + 15)
        if b"event: error" in block:
            data = _event_data(block, block.find(b"event: error"))
            error = data.get("error") if isinstance(data, dict) else None
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

    def broke(self, exc: BaseException) -> None:
        """The body stopped with an error (connection dropped, read timed out)."""
        if self.error_type is None:
            self.error_type = "timeout" if isinstance(exc, httpx.TimeoutException) else "api_error"

    def closed(self) -> None:
        if self.reported:
            return
        self.reported = True
        try:
            self._report()
        except Exception as exc:
            self.call.reporter.internal_error("closing a stream", exc)

    def _report(self) -> None:
        call, reporter = self.call, self.call.reporter
        call.model = self.model
        if self.error_type is not None:
            outcome = "error"
            reporter.event(
                call,
                "error_occurred",
                {"error_type": self.error_type, "message": "the stream ended with an error"},
            )
        else:
            outcome = "completed" if self.stopped else "abandoned"
        if self.usage is not None:
            reporter.charge(call, self.model, stream_usage(self.usage))
        data: dict[str, Any] = {
            "outcome": outcome,
            "time_to_first_byte_ms": self.first_byte_ms(),
            "duration_ms": (_now() - call.started) * 1000.0,
        }
        if self.first_content_at is not None:
            data["time_to_first_content_ms"] = (self.first_content_at - call.started) * 1000.0
        if self.stop_reason is not None:
            data["stop_reason"] = self.stop_reason
        reporter.event(call, "stream_completed", data)


def _event_data(block: bytes, at: int) -> Any:
    """The JSON of the `data:` line of the event whose `event:` line starts at `at`."""
    start = block.find(b"\ndata:", at)
    if start < 0:
        return None
    end = block.find(b"\n", start + 6)
    return orjson.loads(block[start + 6 : end if end >= 0 else len(block)])


class _WatchedSyncStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, watch: StreamWatch) -> None:
        self._inner = inner
        self._watch = watch

    def __iter__(self) -> Any:
        watch = self._watch
        try:
            for chunk in self._inner:
                watch.feed(chunk)
                yield chunk
        except Exception as exc:
            watch.broke(exc)
            raise

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._watch.closed()


class _WatchedAsyncStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, watch: StreamWatch) -> None:
        self._inner = inner
        self._watch = watch

    async def __aiter__(self) -> Any:
        watch = self._watch
        try:
            async for chunk in self._inner:
                watch.feed(chunk)
                yield chunk
        except Exception as exc:
            watch.broke(exc)
            raise

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._watch.closed()
