"""Reports what the official `anthropic` client does: model calls, streams, errors and retries.

    pulse.instrument_anthropic(client)        # an anthropic.Anthropic or AsyncAnthropic

How it observes without changing anything the caller sees:

- `client.messages._post` (what `messages.create` and `messages.stream` call) is wrapped:
  it marks the call in a context variable, returns the client's own result and re-raises
  the client's own exception, untouched. Non-streaming usage is read from the `Message`.
- Event hooks on the client's httpx client see every HTTP attempt of the client's own retry
  loop: each error status, each retry. The client's `_should_retry_exception` (when the
  installed version has it) is wrapped to see attempts that got no response (timeouts).
- A 2xx stream's body is watched (`anthropic_streams.StreamWatch`) and the stream is charged
  when its response closes, however that happens (read to the end, closed early, abandoned,
  broken mid-way).

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
from anthropic.types import Message

from producers.attribution import current as current_attribution
from producers.integrations.anthropic_streams import StreamWatch

Track = Callable[..., None]
RecordCall = Callable[..., Any]
Report = Callable[[str, str], None]
ClientT = TypeVar("ClientT", anthropic.Anthropic, anthropic.AsyncAnthropic)

_now = time.perf_counter
_CALL: ContextVar[_Call | None] = ContextVar("genpulse_anthropic_call", default=None)
_MESSAGES_PATH = "/v1/messages"
_PROVIDER = "anthropic"


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
        watch = StreamWatch(self, _now())
        if not watch.wrap(response):
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
