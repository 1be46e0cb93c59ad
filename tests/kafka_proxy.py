"""A TCP proxy in front of one real broker that can lose a producer's acknowledgements.

The broker is started with this proxy's port as its advertised listener, so every client
(and the broker's own inter-broker calls) goes through it. For the next `n` Produce requests
of a chosen client id, the proxy passes the request on, so the broker writes the records,
and then turns the broker's answer into an error the client cannot retry
(UNKNOWN_SERVER_ERROR): an acknowledgement lost after the write. The producer must resend
what was in fact written, which is what the worker's de-duplication is for. Frames are
decoded and re-encoded with aiokafka's own protocol classes.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from dataclasses import dataclass

from aiokafka.protocol import produce

PRODUCE = 0
UNKNOWN_SERVER_ERROR = -1
RESPONSES = {v: getattr(produce, f"ProduceResponse_v{v}") for v in range(9)}


@dataclass
class LostAcks:
    """What to lose and what was lost (read from the test's thread)."""

    client_id: str
    remaining: int = 0
    lost_requests: int = 0


async def _frame(reader: asyncio.StreamReader) -> bytes:
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    return await reader.readexactly(size)


def _failed(body: bytes, version: int) -> bytes:
    """The same Produce response with every partition's error set to a non-retriable one."""
    response = RESPONSES[version].decode(body)
    topics = [
        (topic, [(p[0], UNKNOWN_SERVER_ERROR, -1, *p[3:]) for p in partitions])
        for topic, partitions in response.topics
    ]
    fields = {"topics": topics}
    if version >= 1:
        fields["throttle_time_ms"] = response.throttle_time_ms
    out: bytes = RESPONSES[version](**fields).encode()
    return out


class KafkaProxy:
    """Runs on its own thread and loop: `with KafkaProxy(port, broker_port) as proxy: ...`."""

    def __init__(self, listen_port: int, broker_port: int, client_id: str) -> None:
        self.listen_port, self.broker_port = listen_port, broker_port
        self.acks = LostAcks(client_id)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def lose_next(self, n: int) -> None:
        with self._lock:
            self.acks.remaining = n

    def lost(self) -> int:
        """How many Produce answers were turned into errors so far."""
        with self._lock:
            return self.acks.lost_requests

    def __enter__(self) -> KafkaProxy:
        self._thread.start()
        start = asyncio.start_server(self._client, "127.0.0.1", self.listen_port)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            b_reader, b_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except OSError:
            c_writer.close()
            return
        doomed: dict[int, int] = {}  # correlation id -> Produce version whose answer is lost
        up = asyncio.create_task(self._requests(c_reader, b_writer, doomed))
        down = asyncio.create_task(self._answers(b_reader, c_writer, doomed))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for writer in (b_writer, c_writer):
            writer.close()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, doomed: dict[int, int]
    ) -> None:
        while True:
            body = await _frame(reader)
            api_key, version, correlation, id_len = struct.unpack(">hhih", body[:10])
            client_id = body[10 : 10 + id_len].decode() if id_len > 0 else ""
            if api_key == PRODUCE and client_id == self.acks.client_id:
                with self._lock:
                    if self.acks.remaining > 0:
                        self.acks.remaining -= 1
                        doomed[correlation] = version
            writer.write(struct.pack(">i", len(body)) + body)
            await writer.drain()

    async def _answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, doomed: dict[int, int]
    ) -> None:
        while True:
            body = await _frame(reader)
            correlation = struct.unpack(">i", body[:4])[0]
            version = doomed.pop(correlation, None)
            if version is not None:
                failed = _failed(body[4:], version)
                with self._lock:
                    self.acks.lost_requests += 1
                body = body[:4] + failed
            writer.write(struct.pack(">i", len(body)) + body)
            await writer.drain()
