"""Types of the C extension built from _anthropic_fast.c (the caller's-thread paths)."""

from collections.abc import AsyncIterator, Callable, Collection, Generator, Iterator
from typing import Any

HEAD_MAX: int
TAIL_MAX: int

class SyncWatch:
    info: tuple[Any, float, Any, tuple[str | None, str | None], float]
    call: Any
    first_content_at: float | None
    head: list[bytes]  # (read-only: each read makes a new list)
    stamps: list[float]
    tail: Collection[bytes]
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

class AsyncWatch:
    info: tuple[Any, float, Any, tuple[str | None, str | None], float]
    call: Any
    first_content_at: float | None
    head: list[bytes]
    stamps: list[float]
    tail: Collection[bytes]
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    def __anext__(self) -> Step: ...
    def aclose(self) -> Step: ...

class Step:
    """An awaited read, close or _post (forwards send, throw and close)."""

    def __await__(self) -> Generator[Any, Any, Any]: ...
    def __next__(self) -> Any: ...
    def send(self, value: Any) -> Any: ...
    def throw(self, typ: Any, val: Any = ..., tb: Any = ...) -> Any: ...
    def close(self) -> None: ...

def watch(
    response: Any,
    defer: Callable[[tuple[Any, ...]], None],
    reporter: Any,
    started: float,
    body: Any,
    attribution: tuple[str | None, str | None],
    call: Any,
) -> bool: ...
def appender(
    jobs: Any, wake_at: int, due: Callable[[], None]
) -> Callable[[tuple[Any, ...]], None]: ...
def configure(
    watch_class: type,
    async_watch_class: type,
    sync_byte_stream: type,
    async_byte_stream: type,
    bound_stream_type: type,
    bound_async_stream_type: type,
    report_started: Any,
    report_closed: Any,
) -> None: ...
def observe_post(
    post: Callable[..., Any],
    reporter: Any,
    defer: Callable[[tuple[Any, ...]], None],
    returned: Callable[..., Any],
    end_raised: Callable[..., Any],
    end_returned: Callable[..., Any],
    call_var: Any,
    attribution_var: Any,
    message_type: type,
    stream_type: type,
    path: str,
    asynchronous: bool,
) -> Callable[..., Any]: ...
