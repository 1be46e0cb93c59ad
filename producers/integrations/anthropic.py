"""Reports what the official `anthropic` client does: model calls, streams, errors and retries.

    pulse.instrument_anthropic(client)        # an anthropic.Anthropic or AsyncAnthropic

How it observes without changing anything the caller sees:

- `client.messages._post` (what `messages.create` and `messages.stream` call) is wrapped:
  it marks the call in a context variable, returns the client's own result and re-raises
  the client's own exception, untouched. Non-streaming usage is the `Message`'s `usage`.
- A response hook on the client's httpx client sees every answer of the client's own retry
  loop: each error status, each retry. The client's `_should_retry_exception` (when the
  installed version has it) is wrapped to see attempts that got no response (timeouts).
- A 2xx stream's body is watched (`anthropic_streams`) and the stream is charged when its
  response closes, however that happens (read to the end, closed early, abandoned, broken).

What runs on the caller's thread is kept to raw references: the call's start, its
attribution, the `usage` object, monotonic and wall stamps, the stream's chunks. Building
the events, pricing and queueing them is deferred work (`Reporter.defer`, run in order by
the SDK's sender thread: producers/deferred.py). Every hook and deferred job swallows its
own failures (counted as `internal_error` in `stats().invalid`).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import anthropic
import httpx
from anthropic.types import Message, Usage

from producers.attribution import current as current_attribution
from producers.integrations.anthropic_streams import watch_stream

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


class Reporter:
    """What one GenPulse client does with an observed call: the events it sends.

    The caller's thread only hands `defer` a tuple of raw references; the methods named
    `_report_*` / `_emit` run later (on the SDK's sender thread) and build, price and
    queue the events. Without a `defer` they run at once.
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
        self, call: _Call, model: str | None, usage: Usage | None, ended: float, at: float
    ) -> None:
        try:
            if call.attempts > 1:
                self.emit_at(call, "retry_succeeded", {"attempt": call.attempts - 1}, at)
            if usage is not None:
                self.charge(call, model or call.model, _message_usage(usage), ended, at)
        except Exception as exc:
            self.internal_error("reading a result", exc)


class _Call:
    """One `/v1/messages` call: all its HTTP attempts, from the caller's call to its outcome.

    The counters start as class attributes, so a call that succeeds at once stores only
    what it was made with."""

    attempts = 0
    last_error_type: str | None = None
    last_status: int | None = None
    redirected = False
    seen_exceptions: list[BaseException] | None = None
    _model: str | None = None

    def __init__(self, reporter: Reporter, kwargs: dict[str, Any]) -> None:
        self.started = _now()
        self.reporter = reporter
        self.body = kwargs.get("body")  # the request the client built; its model read later
        self.stream = kwargs.get("stream") is True
        self.session_id, self.user_id = current_attribution()

    @property
    def model(self) -> str:
        """The model asked for (a stream's report replaces it by the one that answered)."""
        model = self._model
        if model is None:
            body = self.body
            asked = body.get("model") if type(body) is dict else None
            model = self._model = asked if type(asked) is str else "unknown"
        return model

    @model.setter
    def model(self, value: str) -> None:
        self._model = value

    # -- each HTTP attempt (the httpx response hook, the retry loop's exception check) ----

    def _attempt_began(self) -> None:
        """Seen at its outcome (an answer, or an exception without one): one hook per call."""
        self.attempts = attempts = self.attempts + 1
        if attempts > 1:
            data: dict[str, Any] = {"attempt": attempts - 1}
            data["reason"] = self.last_error_type or "api_error"
            if self.last_status is not None:
                data["status_code"] = self.last_status
            self.reporter.event(self, "retry_attempted", data)
            self.last_status = None

    def attempt_answered(self, response: httpx.Response) -> None:
        if self.redirected:  # httpx following a redirect: the same attempt
            self.redirected = False
        else:
            self._attempt_began()
        status = response.status_code
        if status < 300:
            if self.stream:
                watch_stream(self, response)
            return
        if status < 400:
            self.redirected = response.has_redirect_location
            return
        self.last_status = status
        self._attempt_failed(_status_error_type(status), f"HTTP {status} from the Messages API")

    def attempt_raised(self, exc: BaseException) -> None:
        if isinstance(exc, anthropic.APIStatusError):
            return  # a status answer: its response was seen by the hook
        seen = self.seen_exceptions
        if seen is None:
            seen = self.seen_exceptions = []
        elif exc in seen:
            return
        seen.append(exc)
        if self.redirected:  # the request httpx made to follow a redirect: the same attempt
            self.redirected = False
        else:
            self._attempt_began()
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
        self.attempt_raised(exc)  # unless seen already (clients without _should_retry_exception)
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
    report_returned = reporter.report_returned
    defer = reporter.defer

    def observed_post(path: str, *args: Any, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return post(path, *args, **kwargs)
        try:
            call: _Call | None = _Call(reporter, kwargs)
        except Exception as exc:
            reporter.internal_error("starting a call", exc)
            call = None
        token = _CALL.set(call)
        try:
            result = post(path, *args, **kwargs)
        except BaseException as exc:
            _CALL.reset(token)
            _end_raised(call, exc)
            raise
        _CALL.reset(token)
        if call is not None:  # the rest is the sender thread's (Reporter.report_returned)
            if not call.stream and isinstance(result, Message):  # its usage, not the response
                defer((report_returned, call, result.model, result.usage, _now(), _time()))
            elif call.attempts > 1:
                defer((report_returned, call, None, None, _now(), _time()))
        return result

    return observed_post


def _async_post(post: Callable[..., Any], reporter: Reporter) -> Callable[..., Any]:
    report_returned = reporter.report_returned
    defer = reporter.defer

    async def observed_post(path: str, *args: Any, **kwargs: Any) -> Any:
        if path != _MESSAGES_PATH:
            return await post(path, *args, **kwargs)
        try:
            call: _Call | None = _Call(reporter, kwargs)
        except Exception as exc:
            reporter.internal_error("starting a call", exc)
            call = None
        token = _CALL.set(call)
        try:
            result = await post(path, *args, **kwargs)
        except BaseException as exc:
            _CALL.reset(token)
            _end_raised(call, exc)
            raise
        _CALL.reset(token)
        if call is not None:
            if not call.stream and isinstance(result, Message):  # its usage, not the response
                defer((report_returned, call, result.model, result.usage, _now(), _time()))
            elif call.attempts > 1:
                defer((report_returned, call, None, None, _now(), _time()))
        return result

    return observed_post


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


def _on_response(response: httpx.Response) -> None:
    """The common answer (a first attempt's 2xx) in this one frame; the rest in the call's."""
    call = _CALL.get()
    if call is None:
        return
    try:
        if call.attempts == 0 and response.status_code < 300:
            call.attempts = 1
            if call.stream:
                watch_stream(call, response)
        else:
            call.attempt_answered(response)
    except Exception as exc:
        call.reporter.internal_error("seeing an answer", exc)


class _Done:
    """An awaitable that is already done: the async hooks need no coroutine per call."""

    __slots__ = ()

    def __await__(self) -> Iterator[None]:
        return iter(())


_DONE = _Done()


def _on_response_async(response: httpx.Response) -> _Done:
    _on_response(response)
    return _DONE


def _install_hooks(http: httpx.Client | httpx.AsyncClient, is_async: bool) -> None:
    """Once per httpx client (copies of an anthropic client share theirs)."""
    on_response = _on_response_async if is_async else _on_response
    hooks = http.event_hooks
    if on_response in hooks.get("response", []):
        return
    http.event_hooks = {**hooks, "response": [*hooks.get("response", []), on_response]}


def _accepts_1h(record_call: RecordCall) -> bool:
    try:
        return "cache_write_1h_tokens" in inspect.signature(record_call).parameters
    except (TypeError, ValueError):
        return False
