"""The awaitables of the asynchronous paths: what the caller awaits behaves as without us.

The C extension's asynchronous `_post` and body watch are awaitables of their own over the
client's (or httpx's) awaitables; these drive them through the protocol a coroutine uses
(send, throw, close, cancellation, finalization) against awaitables of ours, and check the
caller sees exactly what the awaited one did while the watch and the reports still happen.
The body-watch tests run through the Python watch as well: both must agree.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import AsyncIterator, Generator
from contextvars import ContextVar
from typing import Any

import httpx
import pytest

from producers.integrations import anthropic_streams
from producers.integrations.anthropic_streams import watch_stream
from tests.unit.test_anthropic_stream_scan import WATCHES, Call, Reporter, sse

fast = anthropic_streams._built
needs_c = pytest.mark.skipif(fast is None, reason="the C extension is not built (no compiler)")


class Ask:
    """Awaited, yields `marker` up to whoever drives the coroutine; returns what is sent."""

    def __await__(self) -> Generator[str, Any, Any]:
        return (yield "marker")


class Body(httpx.AsyncByteStream):
    """Chunks with a suspension before each; records what reached it."""

    def __init__(self, chunks: list[bytes], hold_after: int | None = None) -> None:
        self.chunks = chunks
        self.hold_after = hold_after  # then waits (forever) for the next chunk
        self.seen: list[str] = []
        self.close_error: BaseException | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for i, chunk in enumerate(self.chunks):
                if i == self.hold_after:
                    await asyncio.Event().wait()
                await asyncio.sleep(0)
                yield chunk
        except asyncio.CancelledError:
            self.seen.append("cancelled")
            raise

    async def aclose(self) -> None:
        self.seen.append("aclose")
        if self.close_error is not None:
            raise self.close_error


def watched(body: httpx.AsyncByteStream, c: bool) -> tuple[httpx.Response, Reporter]:
    anthropic_streams.use_c(c)
    try:
        reporter = Reporter()
        response = httpx.Response(200, stream=body)
        watch_stream(reporter, 0.0, {"model": Call.model}, (None, None), None, response)
        assert response.stream is not body
        return response, reporter
    finally:
        anthropic_streams.use_c(True)


def completed(reporter: Reporter) -> list[dict[str, Any]]:
    return [data for kind, data in reporter.events if kind == "stream_completed"]


@pytest.mark.parametrize("c", WATCHES)
async def test_a_cancelled_read_reaches_the_body_and_the_close_still_reports(c: bool) -> None:
    body = Body([sse(0, 1, False)[:40], b"x" * 10, b"never read"], hold_after=2)
    response, reporter = watched(body, c)
    got: list[bytes] = []

    async def read() -> None:
        async for chunk in response.aiter_raw():
            got.append(chunk)

    task = asyncio.create_task(read())
    while len(got) < 2:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # now waiting inside the body, under the watch
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.seen == ["cancelled"]  # the cancellation reached the read itself
    assert got == body.chunks[:2]
    await response.aclose()
    assert body.seen == ["cancelled", "aclose"]
    [data] = completed(reporter)
    assert data["outcome"] == "abandoned"


@pytest.mark.parametrize("c", WATCHES)
async def test_a_failing_close_raises_to_the_caller_and_reports_the_break(c: bool) -> None:
    body = Body([sse(1, 4, False)])
    body.close_error = httpx.ReadError("connection reset")
    response, reporter = watched(body, c)
    watch = response.stream
    assert isinstance(watch, httpx.AsyncByteStream)
    assert [chunk async for chunk in watch] == body.chunks
    with pytest.raises(httpx.ReadError) as raised:
        await watch.aclose()
    assert raised.value is body.close_error
    [data] = completed(reporter)
    assert data["outcome"] == "error"  # closed by a transport error: the stream broke
    error = {"error_type": "api_error", "message": "the stream ended with an error"}
    assert ("error_occurred", error) in reporter.events


class Scripted(httpx.AsyncByteStream):
    """A body driven by hand: each chunk is what the driver sends (or recovers a throw)."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    yield await Ask()
                except ValueError as exc:
                    yield f"recovered {exc}".encode()
        finally:
            self.ended.append("finally")

    async def aclose(self) -> None:
        self.ended.append("aclose")


@needs_c
def test_the_c_read_forwards_send_throw_and_close_and_keeps_what_returns() -> None:
    body = Scripted()
    response, reporter = watched(body, True)
    watch = response.stream
    assert type(watch).__name__ == "_CWatchedAsyncStream"
    chunks = watch.__aiter__()
    step = chunks.__anext__().__await__()
    assert step.send(None) == "marker"  # what the body yields goes up as it is
    with pytest.raises(StopIteration) as ended:
        step.send(b"event: message_start\n")
    assert ended.value.value == b"event: message_start\n"  # the chunk, untouched
    with pytest.raises(RuntimeError, match="already awaited"):
        step.send(None)
    step = chunks.__anext__().__await__()
    assert step.send(None) == "marker"
    with pytest.raises(StopIteration) as ended:
        step.throw(ValueError("oops"))
    assert ended.value.value == b"recovered oops"
    assert watch.head == [b"event: message_start\n", b"recovered oops"]
    step = chunks.__anext__().__await__()
    assert step.send(None) == "marker"
    with pytest.raises(KeyError):
        step.throw(KeyError("not handled"))  # the body's own error, as it raised it
    assert body.ended == ["finally"]
    step = chunks.__anext__().__await__()
    with pytest.raises(StopAsyncIteration):
        step.send(None)  # the body has ended
    closing = watch.aclose()
    closing.close()  # never awaited: nothing ran, nothing reported
    assert body.ended == ["finally"] and completed(reporter) == []
    with pytest.raises(StopIteration):
        watch.aclose().send(None)
    assert body.ended == ["finally", "aclose"]
    assert [data["outcome"] for data in completed(reporter)] == ["abandoned"]


# -- the asynchronous _post ------------------------------------------------------------------


class Message:
    model = "claude-sonnet-4-5"
    usage = {"input_tokens": 3}


class Recorder:
    """The reporter's callables the C _post is given, recording their calls."""

    def __init__(self) -> None:
        self.deferred: list[tuple[Any, ...]] = []
        self.raised: list[BaseException] = []
        self.returned_late: list[Any] = []

    def defer(self, job: tuple[Any, ...]) -> None:
        self.deferred.append(job)

    def returned(self, *args: Any) -> None:
        raise AssertionError("deferred, not called")

    def end_raised(self, reporter: Any, kwargs: dict[str, Any], started: float, exc: Any) -> None:
        assert reporter is self and isinstance(started, float)
        assert kwargs == {"body": {"model": "m"}}
        self.raised.append(exc)

    def end_returned(self, reporter: Any, kwargs: dict[str, Any], at: float, result: Any) -> None:
        self.returned_late.append(result)

    @staticmethod
    def internal_error(where: str, exc: BaseException) -> None:
        raise AssertionError(f"{where}: {exc!r}")


CALL: ContextVar[Any] = ContextVar("call", default=None)
ATTRIBUTION: ContextVar[Any] = ContextVar("attribution", default=None)


def wrapped(post: Any) -> tuple[Any, Recorder]:
    assert fast is not None
    recorder = Recorder()
    observed = fast.observe_post(
        post,
        recorder,
        recorder.defer,
        recorder.returned,
        recorder.end_raised,
        recorder.end_returned,
        CALL,
        ATTRIBUTION,
        Message,
        httpx.Response,  # (the stream type: not met here)
        "/v1/messages",
        True,
    )
    return observed, recorder


@needs_c
async def test_the_c_post_runs_the_call_when_awaited_and_defers_its_report() -> None:
    calls: list[tuple[Any, ...]] = []
    answer = Message()

    async def post(path: str, **kwargs: Any) -> Any:
        calls.append((path, kwargs))
        await asyncio.sleep(0)
        return answer

    observed, recorder = wrapped(post)
    other = observed("/v1/models", body={"model": "m"})
    assert inspect.iscoroutine(other)  # another endpoint: the client's own coroutine
    assert await other is answer
    CALL.set("left by a beta call")
    pending = observed("/v1/messages", body={"model": "m"})
    assert len(calls) == 1  # made when awaited, as an `async def` wrapper would
    assert await pending is answer
    assert CALL.get() is None  # cleared at the start
    [job] = recorder.deferred
    assert job[0] == recorder.returned and job[1:3] == (answer.model, answer.usage)
    assert job[4] <= job[5]  # started, ended


@needs_c
async def test_the_c_post_hands_on_the_clients_error_untouched_and_reports_it() -> None:
    error = httpx.ConnectError("refused")

    async def post(path: str, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        raise error

    observed, recorder = wrapped(post)
    with pytest.raises(httpx.ConnectError) as raised:
        await observed("/v1/messages", body={"model": "m"})
    assert raised.value is error and recorder.raised == [error]


@needs_c
async def test_a_cancelled_c_post_cancels_the_call_and_reports_the_cancellation() -> None:
    seen: list[str] = []

    async def post(path: str, **kwargs: Any) -> Any:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    observed, recorder = wrapped(post)
    task = asyncio.create_task(observed("/v1/messages", body={"model": "m"}))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]  # thrown into the client's own await
    [exc] = recorder.raised
    assert isinstance(exc, asyncio.CancelledError)  # (its report ignores what is no API error)


@needs_c
def test_the_c_post_thrown_into_or_closed_behaves_as_a_coroutine() -> None:
    ended: list[str] = []

    async def post(path: str, **kwargs: Any) -> Any:
        try:
            return await Ask()
        finally:
            ended.append("finally")

    observed, recorder = wrapped(post)
    step = observed("/v1/messages", body={"model": "m"}).__await__()
    with pytest.raises(ValueError):
        step.throw(ValueError("before it started"))
    assert ended == [] and recorder.raised == []  # nothing ran
    step = observed("/v1/messages", body={"model": "m"}).__await__()
    assert step.send(None) == "marker"
    step.close()
    assert ended == ["finally"]  # the client's coroutine was closed
    [exc] = recorder.raised
    assert isinstance(exc, GeneratorExit)  # as an `async def` wrapper's `except` sees it
    step = observed("/v1/messages", body={"model": "m"}).__await__()
    assert step.send(None) == "marker"
    del step
    gc.collect()
    assert ended == ["finally", "finally"]  # dropped while awaited: closed, as a coroutine is
    assert len(recorder.raised) == 2
    step = observed("/v1/messages", body={"model": "m"}).__await__()
    assert step.send(None) == "marker"
    with pytest.raises(StopIteration) as returned:
        step.send(Message())
    assert isinstance(returned.value.value, Message) and len(recorder.deferred) == 1
