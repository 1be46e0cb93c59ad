"""DogStatsD sink: samples to a Datadog agent through the `datadog` package's client.

Datagrams are the client's own (`genpulse.phase.duration:812.5|d|#service:uvp,env:prod,
phase:analysis`), over UDP to host:port or a Unix socket. The client sends synchronously
from a worker thread (DNS or a full socket never holds up the event loop); its own drop
counter tells which datagrams did not leave, and a batch of which none left is retried.
"""

from __future__ import annotations

import asyncio
import logging

from datadog.dogstatsd.base import DogStatsd

from streams.sinks.delivery import DeliveryError, Outbox, RetryPolicy
from streams.sinks.health import SinkStats
from streams.sinks.samples import Kind, Sample

BATCH_SIZE = 200


def make_client(host: str, port: int, socket_path: str, namespace: str) -> DogStatsd:
    """A synchronous, unbuffered client (each sample is one datagram, in order).

    Its telemetry is on only for its drop counters: the flush interval is so long that it
    never sends telemetry datagrams (genpulse's health hash reports instead). Origin
    detection is off so datagrams carry exactly the tags genpulse chose.
    """
    return DogStatsd(
        host=None if socket_path else host,
        port=None if socket_path else port,
        socket_path=socket_path or None,
        namespace=namespace,
        disable_buffering=True,
        disable_aggregation=True,
        disable_background_sender=True,
        disable_telemetry=False,
        telemetry_min_flush_interval=10**12,
        origin_detection_enabled=False,
        socket_timeout=0,
        track_instance=False,
    )


class DogStatsdSink:
    name = "dogstatsd"

    def __init__(
        self,
        client: DogStatsd,
        *,
        capacity: int,
        retry: RetryPolicy,
    ) -> None:
        self.client = client
        # the client logs every unsent datagram; genpulse counts them instead
        logging.getLogger("datadog.dogstatsd").setLevel(logging.ERROR)
        self.stats = SinkStats(self.name)
        self.outbox: Outbox[Sample] = Outbox(
            self.stats, self._deliver, capacity=capacity, retry=retry, batch_size=BATCH_SIZE
        )

    def offer(self, sample: Sample) -> None:
        self.outbox.offer(sample)

    async def run(self) -> None:
        await self.outbox.run()

    async def _deliver(self, batch: list[Sample]) -> int:
        lost = await asyncio.to_thread(self._send, batch)
        if lost == len(batch):
            raise DeliveryError("DogStatsD agent unreachable: no datagram left")
        return lost

    def _send(self, batch: list[Sample]) -> int:
        before = self.client.packets_dropped_writer
        for sample in batch:
            value = _plain(sample.value)
            tags = list(sample.tags)
            if sample.kind is Kind.DISTRIBUTION:
                self.client.distribution(sample.name, value, tags=tags)
            elif sample.kind is Kind.COUNT:
                self.client.increment(sample.name, value, tags=tags)
            else:
                self.client.gauge(sample.name, value, tags=tags)
        return int(self.client.packets_dropped_writer - before)


def _plain(value: float) -> float | int:
    """1.0 -> 1 so counts read `:1|c`, not `:1.0|c`."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
