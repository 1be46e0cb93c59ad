"""Answer repeated reads from memory until the worker publishes a new snapshot.

Dashboards, SSE clients and Prometheus ask the same questions over and over (the last hour,
the last 24 h), while the answer only changes when the worker writes (at most once a second,
followed by a notice on `<prefix>:updates`) or the minute rolls over (window ranges are
whole minutes, see api/timerange.py). So:

- a result is reused while no notice has come since it was computed;
- concurrent identical reads share one computation;
- merging a day of partials (and slicing it) costs tens to hundreds of milliseconds of
  CPU, so it runs in a process of its own with its own event loop and Redis client: the
  request loop keeps answering meanwhile, on another core, not fighting for the GIL;
- after a notice, plain reads get the previous answer (at most MAX_STALE_S old) while the
  new one is computed; SSE asks for `fresh=True` and waits for it;
- without a live subscription nothing is reused, and a reconnect drops everything kept,
  since changes could have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from api.live import UpdateFeed
from api.settings import ApiSettings
from streams.partial import Targets
from streams.reader import MetricsReader

MAX_ENTRIES = 512
MAX_STALE_S = 5.0


class ReaderProcess:
    """A MetricsReader in a process of its own, with its own event loop and Redis client.

    Merging a day of partials is pure Python CPU work; on a thread of the API process it
    would hold the GIL and stall every request, even those answered from memory. In a
    process it runs on another core and the request loop stays free. `factory(*args)` makes
    the reader in that process (so both must pickle: a module-level function and plain
    settings); answers come back pickled. If the process dies, the next read starts a new
    one."""

    def __init__(self, factory: Callable[..., Any], *args: Any) -> None:
        self._factory, self._args = factory, args
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=_CONTEXT,
            initializer=_serve,
            initargs=(self._factory, self._args),
        )
        pool.submit(_ping).result(timeout=60)  # started and importable, or fail at start
        return pool

    def read(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """`reader.<method>(*args, **kwargs)` in the reader's process, as a future of the
        caller's loop."""
        try:
            future = self._pool.submit(_call, method, args, kwargs)
        except BrokenProcessPool:
            self._pool = self._start()
            future = self._pool.submit(_call, method, args, kwargs)
        return asyncio.wrap_future(future)

    async def close(self) -> None:
        with contextlib.suppress(BrokenProcessPool):  # a dead process has nothing to close
            await asyncio.wrap_future(self._pool.submit(_close))
        await asyncio.to_thread(self._pool.shutdown, True)


def redis_client(settings: ApiSettings) -> aioredis.Redis:
    return aioredis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.api_redis_timeout_s,
        socket_timeout=settings.api_redis_timeout_s,
    )


def snapshot_reader(settings: ApiSettings, targets: Targets) -> MetricsReader:
    """The API's reader, as ReaderProcess makes it in its process."""
    return MetricsReader(redis_client(settings), settings.key_prefix, targets)


_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["api.snapshot_cache"])
"""Reader processes fork from a clean single-threaded server (never from the API's own
threads), which has imported the reader once: the API starts one in milliseconds."""

_loop: asyncio.AbstractEventLoop | None = None
_reader: Any = None


def _serve(factory: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """In the reader's process: one event loop for the process's life, and the reader."""
    global _loop, _reader
    _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    _reader = factory(*args)


def _ping() -> bool:
    return True


def _call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    assert _loop is not None
    return _loop.run_until_complete(getattr(_reader, method)(*args, **kwargs))


def _close() -> None:
    assert _loop is not None
    _loop.run_until_complete(_reader.redis.aclose())


@dataclass
class _Entry:
    epoch: int
    generation: int
    born: float
    result: asyncio.Future[Any]
    previous: Any = None
    has_previous: bool = False

    def stale_answer(self, fresh: bool) -> bool:
        """Whether the previous answer may stand in while this one is computed."""
        return (
            not fresh
            and self.has_previous
            and not self.result.done()
            and time.monotonic() - self.born <= MAX_STALE_S
        )


class SnapshotCache:
    def __init__(self, reader: ReaderProcess, feed: UpdateFeed) -> None:
        self._reader = reader
        self._feed = feed
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._windows: dict[Hashable, tuple[Any, ...]] = {}  # window question -> latest key

    async def read(
        self,
        method: str,
        *args: Any,
        fresh: bool = False,
        window: Hashable | None = None,
        **kwargs: Any,
    ) -> Any:
        """`reader.<method>(*args, **kwargs)`, computed once per snapshot generation.

        The key holds every argument, filters and group-by included (they are hashable:
        streams.slicing.Where is a frozen dataclass), so a sliced read never answers for
        another slice. `window` names the question of a window ending now (e.g. "24h") for
        the minute it rolls over: until the new minute's answer is computed, the previous
        minute's stands in, under the same rules as after a notice (it says its own range)."""
        if not self._feed.connected:
            self._entries.clear()
            return await self._reader.read(method, *args, **kwargs)
        key = (method, args, tuple(sorted(kwargs.items())))
        epoch, generation = self._feed.epoch, self._feed.latest_id
        entry = self._entries.get(key)
        lineage = None if window is None else (method, window, key[2])
        if entry is None or entry.epoch != epoch:
            latest = self._windows.get(lineage) if lineage is not None else None
            before = self._entries.get(latest) if latest is not None else None
            usable = before is not None and before.epoch == epoch and _answered(before)
            entry = self._start(key, epoch, generation, before if usable else None)
        elif entry.generation != generation:
            entry = self._start(key, epoch, generation, entry if _answered(entry) else None)
        if lineage is not None:
            self._windows[lineage] = key
        self._entries.move_to_end(key)
        if entry.stale_answer(fresh):
            return entry.previous
        return await asyncio.shield(entry.result)

    def _start(
        self, key: tuple[Any, ...], epoch: int, generation: int, before: _Entry | None
    ) -> _Entry:
        method, args, kwargs = key
        future = self._reader.read(method, *args, **dict(kwargs))
        entry = _Entry(epoch, generation, time.monotonic(), future)
        if before is not None:
            entry.previous, entry.has_previous = before.result.result(), True
            entry.born = before.born
        self._entries[key] = entry

        def settle(done: asyncio.Future[Any]) -> None:
            if done.cancelled() or done.exception() is not None:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            else:
                entry.born = time.monotonic()

        entry.result.add_done_callback(settle)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        if len(self._windows) > MAX_ENTRIES:
            self._windows.clear()  # only stand-ins are lost
        return entry


def _answered(entry: _Entry) -> bool:
    return entry.result.done() and not entry.result.cancelled() and not entry.result.exception()
