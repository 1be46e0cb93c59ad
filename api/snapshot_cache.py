"""Answer repeated reads from memory until the worker publishes a new snapshot.

Dashboards, SSE clients and Prometheus ask the same questions over and over (the last hour,
the last 24 h), while the answer only changes when the worker writes (at most once a second,
followed by a notice on `<prefix>:updates`) or the minute rolls over (window ranges are
whole minutes, see api/timerange.py). So:

- a result is reused while no notice has come since it was computed;
- concurrent identical reads share one computation;
- merging a day of partials costs tens of milliseconds of CPU, so it runs on a thread with
  its own event loop and Redis client: the request loop keeps answering meanwhile;
- after a notice, plain reads get the previous answer (at most MAX_STALE_S old) while the
  new one is computed; SSE asks for `fresh=True` and waits for it;
- without a live subscription nothing is reused, and a reconnect drops everything kept,
  since changes could have been missed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.live import UpdateFeed

MAX_ENTRIES = 512
MAX_STALE_S = 5.0


class ReaderThread:
    """A MetricsReader living on its own thread and event loop."""

    def __init__(self, make_reader: Callable[[], Any]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="reader", daemon=True)
        self._thread.start()
        self._reader = self._call(self._make(make_reader)).result()

    @staticmethod
    async def _make(make_reader: Callable[[], Any]) -> Any:
        return make_reader()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def read(self, method: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """`reader.<method>(*args, **kwargs)` on the reader's thread, as a future of the
        caller's loop."""
        return asyncio.wrap_future(self._call(getattr(self._reader, method)(*args, **kwargs)))

    async def close(self) -> None:
        await asyncio.wrap_future(self._call(self._reader.redis.aclose()))
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5)
        self._loop.close()


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
    def __init__(self, reader: ReaderThread, feed: UpdateFeed) -> None:
        self._reader = reader
        self._feed = feed
        self._entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()

    async def read(self, method: str, *args: Any, fresh: bool = False, **kwargs: Any) -> Any:
        """`reader.<method>(*args, **kwargs)`, computed once per snapshot generation.

        The key holds every argument, filters and group-by included (they are hashable:
        streams.slicing.Where is a frozen dataclass), so a sliced read never answers for
        another slice."""
        if not self._feed.connected:
            self._entries.clear()
            return await self._reader.read(method, *args, **kwargs)
        key = (method, args, tuple(sorted(kwargs.items())))
        epoch, generation = self._feed.epoch, self._feed.latest_id
        entry = self._entries.get(key)
        if entry is None or entry.epoch != epoch:
            entry = self._start(key, epoch, generation, None)
        elif entry.generation != generation:
            usable = entry.result.done() and not entry.result.exception()
            entry = self._start(key, epoch, generation, entry if usable else None)
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
        return entry
