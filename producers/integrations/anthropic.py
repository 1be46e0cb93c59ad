"""Reports what the official `anthropic` client does: model calls, streams, errors and retries.

    pulse.instrument_anthropic(client)        # an anthropic.Anthropic or AsyncAnthropic

How it observes without changing anything the caller sees:

- `client.messages._post` (what `messages.create` and `messages.stream` call) is wrapped:
  it returns the client's own result and re-raises the client's own exception, untouched.
  A call answered at its first attempt (nearly all of them) costs the caller one monotonic
  stamp before, and after it one read of the attribution and one tuple handed to `defer`:
  no object per call, no hook per HTTP response. Non-streaming usage is the `Message`'s
  `usage`.
- The client's retry loop asks `_should_retry(response)` about each failed status answer
  with retries left and `_should_retry_exception(err)` about each attempt that raised; both
  are wrapped (where the installed version has them). A call's first failure makes its
  state (`_Call`, kept in a context variable until the call returns): its attempts, errors
  and retries. The final failure is the exception the wrapped `_post` sees.
- A 2xx stream's body is watched (`anthropic_streams`) from the moment `_post` returns the
  `Stream`, before the caller reads a byte, and the stream is charged when its response
  closes, however that happens (read to the end, closed early, abandoned, broken).

What runs on the caller's thread is kept to raw references: the call's start, its
attribution, the answer's model and `usage`, monotonic stamps, the stream's chunks.
Building the events, pricing and queueing them is deferred work (`Reporter.defer`, run in
order by the SDK's sender thread: producers/deferred.py), which also derives wall times
from the stamps.
Every wrapper and deferred job swallows its own failures (counted as `internal_error` in
`stats().invalid`).
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
from anthropic import AsyncStream, Stream
from anthropic.types import Message, Usage

from producers import attribution
from producers.attribution import current as current_attribution
from producers.deferred import DeferredReports
from producers.integrations.anthropic_streams import c_extension, watch_stream
from producers.integrations.anthropic_streams import wall_of as _wall

Emit = Callable[..., Any]
"""(event_type, data, session_id, user_id, at) -> queued; `Pipeline.emit`."""
RecordCall = Callable[..., Any]
Report = Callable[[str, str], None]
Defer = Callable[[tuple[Any, ...]], None]
"""Takes `(function, *args)` and runs it later, in order (`DeferredReports.add`)."""
ClientT = TypeVar("ClientT", anthropic.Anthropic, anthropic.AsyncAnthropic)

_now = time.perf_counter
_time = time.time
_CALL: ContextVar[_Call | None] = ContextVar("genpulse_anthropic_call", default=None)
_MESSAGES_PATH = "/v1/messages"
_PROVIDER = "anthropic"


def _run_now(job: tuple[Any, ...]) -> None:
    job[0](*job[1:])


def deferring_to(deferred: DeferredReports) -> Defer:
    """`deferred.add`, in C when the extension is built: the caller's thread defers one job
    per call and two per stream, and in situ a Python method call costs about a microsecond
    (bench/anthropic_overhead.py), the C appender a tenth of that."""
    fast = c_extension()
    if fast is None:
        return deferred.add
    return fast.appender(*deferred.parts())  # type: ignore[no-any-return]


class Reporter:
    """What one GenPulse client does with an observed call: the events it sends.

    The caller's thread only hands `defer` a tuple of raw references; the methods it names
    (`returned`, `report_returned`, `emit_at`) run later, on the SDK's sender thread, and
    build, price and queue the events. Without a `defer` they run at once.
    """

    def __init__(
        self, emit: Emit, record_call: RecordCall, report: Report, defer: Defer | None = None
    ) -> None:
        self.emit = emit
        self.record_call = record_call
        self.report = report
        self.defer: Defer = defer if defer is not None else _run_now
        self.splits_1h = _accepts_1h(record_call)

    def internal_error(self, where: str, exc: BaseException) -> None:
        with contextlib.suppress(Exception):  # reporting must not fail the caller either
            self.report("internal_error", f"anthropic instrumentation {where}: {exc!r:.200}")

    def event(self, call: _Call, event_type: str, data: dict[str, Any]) -> None:
        """Queue one event of `call` stamped now (the rare paths: errors, retries)."""
        self.defer((self.emit_at, call, event_type, data, _time()))

    def emit_at(self, call: _Call, event_type: str, data: dict[str, Any], at: float) -> None:
        try:
            data["provider"] = _PROVIDER
            data["model"] = call.model
            self.emit(event_type, data, call.session_id, call.user_id, at)
        except Exception as exc:
            self.internal_error(f"reporting {event_type}", exc)

    def charge(
        self, call: _Call, model: str, usage: dict[str, int], ended: float, at: float
    ) -> None:
        """One model_called for `usage` (deferred work: it prices the call)."""
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
            duration_ms=(ended - call.started) * 1000.0,
            timestamp_ms=int(at * 1000),
            **extra,
        )

    def report_returned(
        self, call: _Call, model: str | None, usage: Usage | None, ended: float
    ) -> None:
        """A call that needed state: retried, or a stream (its usage is charged by its watch)."""
        try:
            at = _wall(ended)
            if call.attempts > 1:
                self.emit_at(call, "retry_succeeded", {"attempt": call.attempts - 1}, at)
            if usage is not None:
                self.charge(call, model or call.model, _message_usage(usage), ended, at)
        except Exception as exc:
            self.internal_error("reading a result", exc)

    def new_call(
        self, started: float, body: Any, attribution: tuple[str | None, str | None]
    ) -> _Call:
        return _Call(self, started, body, attribution)

    def returned(
        self,
        model: str,
        usage: Usage,
        attribution: tuple[str | None, str | None],
        started: float,
        ended: float,
    ) -> None:
        """A call answered at its first attempt: the common path, whose state is made here.
        (The caller's thread hands over the answer's model and usage, not the `Message` or
        the request: holding fewer objects until the sender runs adds less work for the
        garbage collector, which every thread of the process pays for.)"""
        try:
            call = _Call(self, started, None, attribution)
            call.model = model
            self.charge(call, model, _message_usage(usage), ended, _wall(ended))
        except Exception as exc:
            self.internal_error("reading a result", exc)


class _Call:
    """One `/v1/messages` call that needs state: all its HTTP attempts, from the caller's call
    to its outcome. Made at the call's first failed attempt (or for a stream, or on the
    sender thread for a plain answer).

    The counters start as class attributes, so a call that succeeds at once stores only
    what it was made with."""

    attempts = 0
    last_error_type: str | None = None
    last_status: int | None = None
    seen_response: httpx.Response | None = None
    seen_exceptions: list[BaseException] | None = None
    _model: str | None = None

    def __init__(
        self,
        reporter: Reporter,
        started: float,
        body: Any,
        attribution: tuple[str | None, str | None],
    ) -> None:
        self.reporter = reporter
        self.started = started
        self.body = body  # the request the client built (its bytes, when made at a failure)
        self.session_id, self.user_id = attribution

    @property
    def model(self) -> str:
        """The model asked for (a stream's report replaces it by the one that answered)."""
        model = self._model
        if model is None:
            body = self.body
            if type(body) is bytes:  # read on the sender thread, once, for a failed call
                with contextlib.suppress(ValueError):
                    body = orjson.loads(body)
            asked = body.get("model") if type(body) is dict else None
            model = self._model = asked if type(asked) is str else "unknown"
        return model

    @model.setter
    def model(self, value: str) -> None:
        self._model = value

    # -- each HTTP attempt (the retry loop's questions, the wrapped _post's outcome) -------

    def attempt_began(self) -> None:
        """Seen at its outcome (a failure, or the answer _post returns)."""
        self.attempts = attempts = self.attempts + 1
        if attempts > 1:
            data: dict[str, Any] = {"attempt": attempts - 1}
            data["reason"] = self.last_error_type or "api_error"
            if self.last_status is not None:
                data["status_code"] = self.last_status
            self.reporter.event(self, "retry_attempted", data)
            self.last_status = None

    def status_failed(self, response: httpx.Response) -> None:
        """An error status answer (each one once, however many times the client asks)."""
        if response is self.seen_response:
            return
        self.seen_response = response
        self.attempt_began()
        status = response.status_code
        self.last_status = status
        self._attempt_failed(_status_error_type(status), f"HTTP {status} from the Messages API")

    def attempt_raised(self, exc: BaseException) -> None:
        if isinstance(exc, anthropic.APIStatusError):
            self.status_failed(exc.response)
            return
        seen = self.seen_exceptions
        if seen is None:
            seen = self.seen_exceptions = []
        elif exc in seen:
            return
        seen.append(exc)
        self.attempt_began()
        error_type = "timeout" if isinstance(exc, anthropic.APITimeoutError) else "api_error"
        self._attempt_failed(error_type, f"{type(exc).__name__}: no response")

    def _attempt_failed(self, error_type: str, message: str) -> None:
        self.last_error_type = error_type
        data: dict[str, Any] = {"error_type": error_type, "message": message}
        data["attempt"] = self.attempts
        if self.last_status is not None:
            data["status_code"] = self.last_status
        self.reporter.event(self, "error_occurred", data)

    # -- the outcome the caller gets (the wrapped _post) ------------------------------

    def raised(self, exc: BaseException) -> None:
        if not isinstance(exc, anthropic.APIError):
            return  # not an API answer (a bad argument, a cancellation): nothing to report
        self.attempt_raised(exc)  # unless seen already (the retry loop asked about it)
        if self.attempts > 1:
            data: dict[str, Any] = {"attempt": self.attempts - 1, "attempts": self.attempts}
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


def _message_usage(usage: Usage) -> dict[str, int]:
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
    _observe_retries(client, reporter)
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


def _c_post(fast: Any, post: Callable[..., Any], reporter: Reporter, is_async: bool) -> Any:
    """The wrapped `_post` in C (`_anthropic_fast.c`): the same steps as the Python ones below,
    without repacking the call's arguments; for an async client, an awaitable of its own
    over the client's coroutine instead of a coroutine frame resumed at every suspension."""
    return fast.observe_post(
        post,
        reporter,
        reporter.defer,
        reporter.returned,
        _end_raised,
        _end_returned,
        _CALL,
        attribution._CURRENT,
        Message,
        AsyncStream if is_async else Stream,
        _MESSAGES_PATH,
        is_async,
    )


def _sync_post(post: Callable[..., Any], reporter: Reporter) -> Callable[..., Any]:
    """The wrapped sync `_post`: in C when the extension is built, else Python."""
    fast = c_extension()
    if fast is not None:
        return _c_post(fast, post, reporter, False)  # type: ignore[no-any-return]
    returned = reporter.returned
    defer = reporter.defer
    watch = watch_stream

    def observed_post(path: str, *args: Any, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return post(path, *args, **kwargs)
        if _CALL.get() is not None:  # left by a request we did not wrap (beta messages)
            _CALL.set(None)
        started = _now()
        try:
            result = post(path, *args, **kwargs)
        except BaseException as exc:
            _end_raised(reporter, kwargs, started, exc)
            raise
        try:  # (free in Python 3.11 unless something raises)
            kind = type(result)
            if kind is Message and _CALL.get() is None:  # answered at once: the rest deferred
                at = current_attribution()
                defer((returned, result.model, result.usage, at, started, _now()))
            elif kind is Stream and _CALL.get() is None:
                body = kwargs.get("body")
                watch(reporter, started, body, current_attribution(), None, result.response)
            else:  # a retried call, another result type
                _end_returned(reporter, kwargs, started, result)
        except Exception as exc:
            reporter.internal_error("reading a result", exc)
        return result

    return observed_post


def _async_post(post: Callable[..., Any], reporter: Reporter) -> Callable[..., Any]:
    """The wrapped async `_post`: in C when the extension is built, else Python."""
    fast = c_extension()
    if fast is not None:
        return _c_post(fast, post, reporter, True)  # type: ignore[no-any-return]
    returned = reporter.returned
    defer = reporter.defer
    watch = watch_stream

    async def observed_post(path: str, *args: Any, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return await post(path, *args, **kwargs)
        if _CALL.get() is not None:
            _CALL.set(None)
        started = _now()
        try:
            result = await post(path, *args, **kwargs)
        except BaseException as exc:
            _end_raised(reporter, kwargs, started, exc)
            raise
        try:  # (free in Python 3.11 unless something raises)
            kind = type(result)
            if kind is Message and _CALL.get() is None:  # answered at once: the rest deferred
                at = current_attribution()
                defer((returned, result.model, result.usage, at, started, _now()))
            elif kind is AsyncStream and _CALL.get() is None:
                body = kwargs.get("body")
                watch(reporter, started, body, current_attribution(), None, result.response)
            else:  # a retried call, another result type
                _end_returned(reporter, kwargs, started, result)
        except Exception as exc:
            reporter.internal_error("reading a result", exc)
        return result

    return observed_post


def _taken(reporter: Reporter, kwargs: dict[str, Any], started: float) -> _Call:
    """The call's state, made now if no attempt failed; the context variable is cleared."""
    call = _CALL.get()
    if call is None:
        return _Call(reporter, started, kwargs.get("body"), current_attribution())
    _CALL.set(None)
    call.started = started  # made at a failure, before the caller's start was known
    return call


def _end_returned(reporter: Reporter, kwargs: dict[str, Any], started: float, result: Any) -> None:
    try:
        call = _taken(reporter, kwargs, started)
        if call.attempts:
            call.attempt_began()  # the attempt that answered, after failed ones
        else:
            call.attempts = 1
        if kwargs.get("stream") is True:
            response = getattr(result, "response", None) or getattr(result, "http_response", None)
            if isinstance(response, httpx.Response) and response.status_code < 300:
                attribution = (call.session_id, call.user_id)
                watch_stream(reporter, call.started, call.body, attribution, call, response)
            if call.attempts > 1:
                reporter.defer((reporter.report_returned, call, None, None, _now()))
        elif isinstance(result, Message):
            reporter.defer((reporter.report_returned, call, result.model, result.usage, _now()))
        elif call.attempts > 1:
            reporter.defer((reporter.report_returned, call, None, None, _now()))
    except Exception as exc:
        reporter.internal_error("reading a result", exc)


def _end_raised(
    reporter: Reporter, kwargs: dict[str, Any], started: float, exc: BaseException
) -> None:
    try:
        call = _taken(reporter, kwargs, started)
        call.raised(exc)
    except Exception as inner:
        reporter.internal_error("reading an error", inner)


def _failed_call(reporter: Reporter, request: Any) -> _Call | None:
    """The current call's state, made at its first failed attempt; None when the request is
    not a Messages API call (the client's other endpoints share its retry loop)."""
    call = _CALL.get()
    if call is None:
        if not isinstance(request, httpx.Request):
            return None
        url = request.url
        if not url.path.endswith(_MESSAGES_PATH) or b"beta=true" in url.query:
            return None  # another endpoint, or beta messages (not instrumented)
        call = _Call(reporter, _now(), request.content, current_attribution())
        _CALL.set(call)  # in the caller's context: the wrapped _post takes it at the end
    return call


def _observe_retries(
    client: anthropic.Anthropic | anthropic.AsyncAnthropic, reporter: Reporter
) -> None:
    """See each failed attempt as the client's retry loop does (when the installed version
    asks these questions; otherwise the final failure is still seen by the wrapped _post)."""
    should_retry = getattr(client, "_should_retry", None)
    if should_retry is not None:

        def observed_status(response: httpx.Response) -> Any:
            try:
                call = _failed_call(reporter, response.request)
                if call is not None:
                    call.status_failed(response)
            except Exception as exc:
                reporter.internal_error("reading a failed attempt", exc)
            return should_retry(response)

        client._should_retry = observed_status  # type: ignore[method-assign]
    decide = getattr(client, "_should_retry_exception", None)
    if decide is not None:

        def observed_exception(err: BaseException) -> Any:
            try:
                call = _failed_call(reporter, getattr(err, "request", None))
                if call is not None:
                    call.attempt_raised(err)
            except Exception as exc:
                reporter.internal_error("reading a failed attempt", exc)
            return decide(err)

        client._should_retry_exception = observed_exception  # type: ignore[method-assign]


def _accepts_1h(record_call: RecordCall) -> bool:
    try:
        return "cache_write_1h_tokens" in inspect.signature(record_call).parameters
    except (TypeError, ValueError):
        return False
