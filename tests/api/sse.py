"""A small Server-Sent Events reader for the tests (fields per the WHATWG spec)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class SseEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    comments: list[str] = field(default_factory=list)


class SseReader:
    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines

    async def next(self, timeout_s: float) -> SseEvent:
        """The next event or comment block, or TimeoutError."""
        return await asyncio.wait_for(self._read(), timeout_s)

    async def next_snapshot(self, timeout_s: float) -> SseEvent:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            left = deadline - asyncio.get_running_loop().time()
            found = await self.next(max(left, 0.001))
            if found.event == "snapshot":
                return found

    async def _read(self) -> SseEvent:
        current = SseEvent()
        seen = False
        async for line in self._lines:
            if line == "":
                if seen:
                    return current
                continue
            seen = True
            if line.startswith(":"):
                current.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data = f"{current.data}\n{value}" if current.data else value
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
        raise EOFError("the stream ended")
