"""Reports what the official `anthropic` client does: model calls, streams, errors and retries.

    pulse.instrument_anthropic(client)        # an anthropic.Anthropic or AsyncAnthropic

How it observes without changing anything the caller sees:

- `client.messages._post` (what `messages.create` and `messages.stream` call) is wrapped:
  it marks the call in a context variable, returns the client's own result and re-raises
  the client's own exception, untouched. Non-streaming usage is read from the `Message`.
- Event hooks on the client's httpx client see every HTTP attempt of the client's own retry
  loop: each error status, each retry. The client's `_should_retry_exception` (when the
  installed version has it) is wrapped to see attempts that got no response (timeouts).
- A 2xx stream's httpx byte stream is wrapped the way httpx wraps it itself: the server-sent
  events are scanned for `message_start` / `message_delta` usage, the first content delta and
  `message_stop`, and the stream is charged when its response closes, however that happens
  (read to the end, closed early, abandoned, broken mid-way).

Every hook swallows its own failures (counted as `internal_error` in `stats().invalid`).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import anthropic
import httpx
import orjson
from anthropic.types import Message

from producers.attribution import current as current_attribution

Track = Callable[..., None]
RecordCall = Callable[..., Any]
Report = Callable[[str, str], None]
ClientT = TypeVar("ClientT", anthropic.Anthropic, anthropic.AsyncAnthropic)

_now = time.perf_counter
_CALL: ContextVar[_Call | None] = ContextVar("genpulse_anthropic_call", default=None)
_MESSAGES_PATH = "/v1/messages"
_PROVIDER = "anthropic"
_UNINTERESTING_EVENTS = frozenset((b"ping", b"content_block_start", b"content_block_stop"))
_SSE_ERROR_TYPES = {"rate_limit_error": "rate_limit", "overloaded_error": "overloaded"}


class Reporter:
    """What one GenPulse client does with an observed call: the events it sends."""

    def __init__(self, track: Track, record_call: RecordCall, report: Report) -> None:
        self.track = track
        self.record_call = record_call
        self.report = report
        self.splits_1h = _accepts_1h(record_call)

    def internal_error(self, where: str, exc: BaseException) -> None:
        with contextlib.suppress(Exception):  # reporting must not fail the caller either
            self.report("internal_error", f"anthropic instrumentation {where}: {exc!r:.200}")

    def charge(self, call: _Call, model: str, usage: dict[str, int]) -> None:
        write_1h = usage["cache_write_1h_tokens"]
        extra: dict[str, Any] = {}
        if self.splits_1h:
            extra["cache_write_1h_tokens"] = write_1h
            write_5m = usage["cache_write_tokens"]
        else:  # a pricing without 1-hour writes: never drop tokens, price them as writes
            write_5m = usage["cache_write_tokens"] + write_1h
        self.record_call(
            model,
            usage["input_tokens"],
            usage["output_tokens"],
            cache_write_tokens=write_5m,
            cache_read_tokens=usage["cache_read_tokens"],
            user_id=call.user_id,
            session_id=call.session_id,
            duration_ms=(_now() - call.started) * 1000.0,
            **extra,
        )

    def event(self, call: _Call, event_type: str, data: dict[str, Any]) -> None:
        data["provider"] = _PROVIDER
        data["model"] = call.model
        self.track(event_type, data, session_id=call.session_id, user_id=call.user_id)


class _Call:
    """One `/v1/messages` call: all its HTTP attempts, from the caller's call to its outcome."""

    __slots__ = (
        "attempts",
        "last_error_type",
        "last_status",
        "model",
        "redirected",
        "reporter",
        "seen_exceptions",
        "session_id",
        "started",
        "stream",
        "user_id",
    )

    def __init__(self, reporter: Reporter, kwargs: dict[str, Any]) -> None:
        self.started = _now()
        self.reporter = reporter
        body = kwargs.get("body")
        model = body.get("model") if isinstance(body, dict) else None
        self.model: str = model if isinstance(model, str) else "unknown"
        self.stream = bool(kwargs.get("stream"))
        self.session_id, self.user_id = current_attribution()
        self.attempts = 0
        self.last_error_type: str | None = None
        self.last_status: int | None = None
        self.redirected = False
        self.seen_exceptions: list[BaseException] = []

    # -- each HTTP attempt (httpx event hooks) ----------------------------------------

    def attempt_started(self) -> None:
        if self.redirected:  # httpx following a redirect: the same attempt
            self.redirected = False
            return
        self.attempts += 1
        if self.attempts > 1:
            data: dict[str, Any] = {"attempt": self.attempts - 1}
            data["reason"] = self.last_error_type or "api_error"
            if self.last_status is not None:
                data["status_code"] = self.last_status
            self.reporter.event(self, "retry_attempted", data)
        self.last_status = None

    def attempt_answered(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            if self.stream:
                self._watch_stream(response)
            return
        if status < 400:
            self.redirected = response.has_redirect_location
            return
        self.last_status = status
        self._attempt_failed(_status_error_type(status), f"HTTP {status} from the Messages API")

    def attempt_raised(self, exc: BaseException) -> None:
        if isinstance(exc, anthropic.APIStatusError) or exc in self.seen_exceptions:
            return  # a status answer: its response was seen by the hook
        self.seen_exceptions.append(exc)
        error_type = "timeout" if isinstance(exc, anthropic.APITimeoutError) else "api_error"
        self._attempt_failed(error_type, f"{type(exc).__name__}: no response")

    def _attempt_failed(self, error_type: str, message: str) -> None:
        self.last_error_type = error_type
        data: dict[str, Any] = {"error_type": error_type, "message": message}
        data["attempt"] = self.attempts
        if self.last_status is not None:
            data["status_code"] = self.last_status
        self.reporter.event(self, "error_occurred", data)

    def _watch_stream(self, response: httpx.Response) -> None:
        watch = _StreamWatch(self, _now())
        inner = response.stream
        if isinstance(inner, httpx.AsyncByteStream):
            response.stream = _WatchedAsyncStream(inner, watch)
        elif isinstance(inner, httpx.SyncByteStream):
            response.stream = _WatchedSyncStream(inner, watch)
        else:
            return
        self.reporter.event(
            self, "stream_started", {"time_to_first_byte_ms": watch.first_byte_ms()}
        )

    # -- the outcome the caller gets (the wrapped _post) ------------------------------

    def returned(self, result: Any) -> None:
        if self.attempts > 1:
            self.reporter.event(self, "retry_succeeded", {"attempt": self.attempts - 1})
        if isinstance(result, Message):
            self.reporter.charge(self, result.model or self.model, _message_usage(result))

    def raised(self, exc: BaseException) -> None:
        if not isinstance(exc, anthropic.APIError):
            return  # not an API answer (a bad argument, a cancellation): nothing to report
        self.attempt_raised(exc)  # unless seen already (clients without _should_retry_exception)
        if self.attempts > 1:
            data: dict[str, Any] = {"attempt": self.attempts - 1}
            data["error_type"] = self.last_error_type or "api_error"
            self.reporter.event(self, "retry_failed", data)


def _status_error_type(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status == 529:
        return "overloaded"
    if status in (408, 504):
        return "timeout"
    return "api_error"


def _message_usage(message: Message) -> dict[str, int]:
    usage = message.usage
    written = usage.cache_creation_input_tokens or 0
    split = usage.cache_creation
    if split is not None:
        write_1h = split.ephemeral_1h_input_tokens or 0
        write_5m = split.ephemeral_5m_input_tokens or 0
    else:
        write_1h, write_5m = 0, written
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_tokens": write_5m,
        "cache_write_1h_tokens": write_1h,
        "cache_read_tokens": usage.cache_read_input_tokens or 0,
    }


def _count(value: Any) -> int:
    """A token count from the wire; anything that is not an int >= 0 counts as none."""
    return value if type(value) is int and value >= 0 else 0


def _stream_usage(usage: dict[str, Any]) -> dict[str, int]:
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


class _StreamWatch:
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

    def __init__(self, call: _Call, headers_at: float) -> None:
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
            reporter.charge(call, self.model, _stream_usage(self.usage))
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
    def __init__(self, inner: httpx.SyncByteStream, watch: _StreamWatch) -> None:
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
    def __init__(self, inner: httpx.AsyncByteStream, watch: _StreamWatch) -> None:
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


# -- installing ---------------------------------------------------------------------------


def instrument(client: ClientT, reporter: Reporter) -> ClientT:
    """Instrument `client` (and the clients its with_options()/copy() make); returns it."""
    if not isinstance(client, anthropic.Anthropic | anthropic.AsyncAnthropic):
        raise TypeError(
            "instrument_anthropic() takes an anthropic.Anthropic or anthropic.AsyncAnthropic "
            f"client, not {type(client).__name__}"
        )
    if getattr(client, "_genpulse_reporter", None) is not None:
        return client
    is_async = isinstance(client, anthropic.AsyncAnthropic)
    messages = client.messages
    post = messages._post
    client._genpulse_reporter = reporter  # type: ignore[attr-defined]
    messages._post = _async_post(post, reporter) if is_async else _sync_post(post, reporter)
    _observe_exceptions(client)
    _install_hooks(client._client, is_async)
    copy = client.copy

    def instrumented_copy(*args: Any, **kwargs: Any) -> Any:
        made = copy(*args, **kwargs)
        try:
            instrument(made, reporter)
        except Exception as exc:
            reporter.internal_error("instrumenting a copy", exc)
        return made

    client.copy = instrumented_copy  # type: ignore[method-assign]
    client.with_options = instrumented_copy  # type: ignore[method-assign]
    return client


def _sync_post(post: Callable[..., Any], reporter: Reporter) -> Callable[..., Any]:
    def observed_post(path: str, *args: Any, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return post(path, *args, **kwargs)
        call = _begin(reporter, kwargs)
        token = _CALL.set(call)
        try:
            result = post(path, *args, **kwargs)
        except BaseException as exc:
            _CALL.reset(token)
            _end_raised(call, exc)
            raise
        _CALL.reset(token)
        _end_returned(call, result)
        return result

    return observed_post


def _async_post(post: Callable[..., Any], reporter: Reporter) -> Callable[..., Any]:
    async def observed_post(path: str, *args: Any, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return await post(path, *args, **kwargs)
        call = _begin(reporter, kwargs)
        token = _CALL.set(call)
        try:
            result = await post(path, *args, **kwargs)
        except BaseException as exc:
            _CALL.reset(token)
            _end_raised(call, exc)
            raise
        _CALL.reset(token)
        _end_returned(call, result)
        return result

    return observed_post


def _begin(reporter: Reporter, kwargs: dict[str, Any]) -> _Call | None:
    try:
        return _Call(reporter, kwargs)
    except Exception as exc:
        reporter.internal_error("starting a call", exc)
        return None


def _end_returned(call: _Call | None, result: Any) -> None:
    if call is not None:
        try:
            call.returned(result)
        except Exception as exc:
            call.reporter.internal_error("reading a result", exc)


def _end_raised(call: _Call | None, exc: BaseException) -> None:
    if call is not None:
        try:
            call.raised(exc)
        except Exception as inner:
            call.reporter.internal_error("reading an error", inner)


def _observe_exceptions(client: anthropic.Anthropic | anthropic.AsyncAnthropic) -> None:
    """See each attempt that raised (timeouts, dropped connections) as the retry loop does."""
    decide = getattr(client, "_should_retry_exception", None)
    if decide is None:  # older clients: the final failure is still seen by the wrapped _post
        return

    def observed(err: BaseException) -> Any:
        call = _CALL.get()
        if call is not None:
            try:
                call.attempt_raised(err)
            except Exception as exc:
                call.reporter.internal_error("reading a failed attempt", exc)
        return decide(err)

    client._should_retry_exception = observed  # type: ignore[method-assign]


def _on_request(request: httpx.Request) -> None:
    call = _CALL.get()
    if call is not None:
        try:
            call.attempt_started()
        except Exception as exc:
            call.reporter.internal_error("seeing an attempt", exc)


def _on_response(response: httpx.Response) -> None:
    call = _CALL.get()
    if call is not None:
        try:
            call.attempt_answered(response)
        except Exception as exc:
            call.reporter.internal_error("seeing an answer", exc)


async def _on_request_async(request: httpx.Request) -> None:
    _on_request(request)


async def _on_response_async(response: httpx.Response) -> None:
    _on_response(response)


def _install_hooks(http: httpx.Client | httpx.AsyncClient, is_async: bool) -> None:
    """Once per httpx client (copies of an anthropic client share theirs)."""
    on_request = _on_request_async if is_async else _on_request
    on_response = _on_response_async if is_async else _on_response
    hooks = http.event_hooks
    if on_request in hooks.get("request", []):
        return
    http.event_hooks = {
        "request": [*hooks.get("request", []), on_request],
        "response": [*hooks.get("response", []), on_response],
    }


def _accepts_1h(record_call: RecordCall) -> bool:
    try:
        return "cache_write_1h_tokens" in inspect.signature(record_call).parameters
    except (TypeError, ValueError):
        return False
