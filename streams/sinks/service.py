"""The sinks process (`genpulse sinks`): Kafka feeds in, enabled exporters out, health to Redis.

It runs apart from the worker, so a slow or dead endpoint can never slow aggregation; inside
it, feeds only queue and every sink drains its own bounded outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
import orjson
import redis.asyncio as aioredis
from aiokafka import ConsumerRecord, TopicPartition

from producers.contract import Event, EventDecodeError
from producers.metric_batch import decode_metric_batch
from streams.reader import MetricsReader
from streams.sinks.aggregates import AggregatePoller
from streams.sinks.datadog_events import DatadogEventsSink
from streams.sinks.datadog_series import DatadogSeriesSink
from streams.sinks.decode import decode_for_sinks
from streams.sinks.delivery import Outbox, Outcome, RetryPolicy
from streams.sinks.dogstatsd import DogStatsdSink, make_client
from streams.sinks.feeds import KafkaFeed, OffsetTracker
from streams.sinks.ga4 import Ga4Sink
from streams.sinks.health import HealthPublisher, SinkStats, read_health
from streams.sinks.http import new_session
from streams.sinks.samples import (
    Sample,
    samples_from_budget_state,
    samples_from_event,
    samples_from_metric_batch,
)
from streams.sinks.settings import SinkSettings
from streams.sinks.webhooks import AlertItem, WebhookSink

log = logging.getLogger("genpulse.sinks")


class SampleSink(Protocol):
    stats: SinkStats
    outbox: Outbox[Any]

    def offer(self, sample: Sample) -> None: ...
    async def run(self) -> None: ...


class EventSink(Protocol):
    stats: SinkStats
    outbox: Outbox[Any]

    def offer(self, event: Event) -> None: ...
    async def run(self) -> None: ...


class Sinks:
    """Every enabled sink and the feeds that fill them; `run()` until cancelled."""

    def __init__(
        self, settings: SinkSettings, redis: aioredis.Redis, session: aiohttp.ClientSession
    ) -> None:
        self.settings = settings
        self.redis = redis
        retry = RetryPolicy(
            settings.sinks_max_attempts, settings.sinks_backoff_s, settings.sinks_backoff_max_s
        )
        capacity = settings.sinks_queue_size
        self.sample_sinks: list[SampleSink] = []
        self.event_sinks: list[EventSink] = []
        self.webhooks: list[WebhookSink] = []
        self.dogstatsd: DogStatsdSink | None = None
        if settings.dogstatsd_enabled:
            client = make_client(
                settings.dogstatsd_host,
                settings.dogstatsd_port,
                settings.dogstatsd_socket,
                settings.metric_namespace,
            )
            self.dogstatsd = DogStatsdSink(client, capacity=capacity, retry=retry)
            self.sample_sinks.append(self.dogstatsd)
        if settings.datadog_series_enabled:
            self.sample_sinks.append(
                DatadogSeriesSink(
                    session,
                    api_url=settings.datadog_api_url,
                    api_key=settings.datadog_api_key,
                    namespace=settings.metric_namespace,
                    flush_s=settings.datadog_flush_s,
                    capacity=capacity,
                    retry=retry,
                )
            )
        if settings.datadog_events_enabled:
            self.event_sinks.append(
                DatadogEventsSink(
                    session,
                    api_url=settings.datadog_api_url,
                    api_key=settings.datadog_api_key,
                    env=settings.env,
                    quality_wait_s=settings.datadog_quality_wait_s,
                    capacity=capacity,
                    retry=retry,
                )
            )
        if settings.ga4_enabled:
            self.event_sinks.append(
                Ga4Sink(
                    session,
                    endpoint=settings.ga4_endpoint,
                    measurement_id=settings.ga4_measurement_id,
                    api_secret=settings.ga4_api_secret,
                    event_types=settings.ga4_event_types,
                    event_names=settings.ga4_event_names,
                    capacity=capacity,
                    retry=retry,
                )
            )
        self.alert_offsets = OffsetTracker()
        forms = [("slack", u.get_secret_value()) for u in settings.webhook_slack_urls]
        forms += [("plain", u.get_secret_value()) for u in settings.webhook_plain_urls]
        for form, url in forms:
            self.webhooks.append(
                WebhookSink(
                    session,
                    redis,
                    prefix=settings.key_prefix,
                    url=url,
                    form=form,
                    dedup_size=settings.webhook_dedup_size,
                    capacity=capacity,
                    retry=retry,
                    on_settled=self._alert_settled,
                )
            )
        self.events_read = SinkStats("feed:events")
        self.budget_states_read = SinkStats("feed:budget-state")
        self.alerts_read = SinkStats("feed:alerts")
        self.batches_read = SinkStats("feed:metrics")
        self.feeds = self._feeds()
        self._readers: list[asyncio.Task[None]] = []
        self.poller: AggregatePoller | None = None
        if self.sample_sinks and settings.sinks_aggregates:
            self.poller = AggregatePoller(
                MetricsReader(redis, settings.key_prefix),
                list(self.sample_sinks),
                env=settings.env,
                window_s=settings.sinks_window_s,
                interval_s=settings.sinks_poll_s,
                timezone=settings.cost_timezone,
            )

    def _feeds(self) -> list[KafkaFeed]:
        s = self.settings
        feeds = []
        if self.sample_sinks or self.event_sinks:
            feeds.append(
                KafkaFeed(
                    s.kafka_bootstrap,
                    s.topic("events"),
                    self.handle_event,
                    self.events_read,
                    group=f"{s.topic_prefix}.sinks.events",
                    start=s.sinks_start,
                )
            )
        if self.sample_sinks:
            feeds.append(
                KafkaFeed(
                    s.kafka_bootstrap,
                    s.topic("budget-state"),
                    self.handle_budget_state,
                    self.budget_states_read,
                    group=None,
                )
            )
        if self.dogstatsd is not None:  # distributions of SDK-side sketches: DogStatsD only
            feeds.append(
                KafkaFeed(
                    s.kafka_bootstrap,
                    s.topic("metrics"),
                    self.handle_metric_batch,
                    self.batches_read,
                    group=f"{s.topic_prefix}.sinks.metrics",
                    start=s.sinks_start,
                )
            )
        if self.webhooks:
            feeds.append(
                KafkaFeed(
                    s.kafka_bootstrap,
                    s.topic("alerts"),
                    self.handle_alert,
                    self.alerts_read,
                    group=f"{s.topic_prefix}.sinks.alerts",
                    start=s.sinks_start,
                    tracker=self.alert_offsets,
                )
            )
        return feeds

    @property
    def all_stats(self) -> list[SinkStats]:
        sinks: list[Any] = [*self.sample_sinks, *self.event_sinks, *self.webhooks]
        polls = [self.poller.stats] if self.poller else []
        return [s.stats for s in sinks] + [f.stats for f in self.feeds] + polls

    def handle_event(self, record: ConsumerRecord[bytes, bytes]) -> None:
        stats = self.events_read
        try:
            event = decode_for_sinks(record.value or b"", self.settings.max_event_bytes)
        except EventDecodeError as exc:
            stats.reject(exc.reason.value)  # the worker dead-letters it; here it is counted
            return
        stats.sent += 1
        for sink in self.event_sinks:
            try:
                sink.offer(event)
            except Exception as exc:  # a bug in one sink must not starve the others
                sink.stats.reject("offer_error")
                sink.stats.error(f"{type(exc).__name__}: {exc}")
                log.exception("sink %s: offer raised", sink.stats.name)
        if self.sample_sinks:
            for sample in samples_from_event(event, self.settings.env):
                for sample_sink in self.sample_sinks:
                    sample_sink.offer(sample)

    def handle_metric_batch(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            batch = decode_metric_batch(record.value or b"")
        except EventDecodeError as exc:
            self.batches_read.reject(exc.reason.value)
            return
        self.batches_read.sent += 1
        if self.dogstatsd is not None:
            for sample in samples_from_metric_batch(batch, self.settings.env):
                self.dogstatsd.offer(sample)

    def handle_budget_state(self, record: ConsumerRecord[bytes, bytes]) -> None:
        stats = self.budget_states_read
        if record.value is None:
            return  # a tombstone: the scope has no budget any more
        try:
            samples = samples_from_budget_state(orjson.loads(record.value), self.settings.env)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            stats.reject("invalid_budget_state")
            return
        stats.sent += 1
        for sample in samples:
            for sink in self.sample_sinks:
                sink.offer(sample)

    def handle_alert(self, record: ConsumerRecord[bytes, bytes]) -> None:
        stats = self.alerts_read
        tp = TopicPartition(record.topic, record.partition)
        try:
            alert = orjson.loads(record.value or b"")
            if not isinstance(alert, dict) or not isinstance(alert.get("id"), str):
                raise ValueError("an alert record is a JSON object with a string 'id'")
        except (orjson.JSONDecodeError, ValueError):
            stats.reject("invalid_alert")
            self.alert_offsets.add(tp, record.offset, 0)
            return
        stats.sent += 1
        item = AlertItem(alert, record.partition, record.offset)
        self.alert_offsets.add(tp, record.offset, len(self.webhooks))
        for sink in self.webhooks:
            if not sink.offer(item):
                self.alert_offsets.done(tp, record.offset)  # a duplicate settles at once

    def _alert_settled(self, item: AlertItem, outcome: Outcome) -> None:
        topic = self.settings.topic("alerts")
        self.alert_offsets.done(TopicPartition(topic, item.partition), item.offset)

    async def run(self) -> None:
        """Until cancelled; `drain()` first for a clean stop."""
        for webhook in self.webhooks:
            await webhook.load()
        health = HealthPublisher(
            self.redis, self.settings.key_prefix, self.all_stats, self.settings.sinks_health_s
        )
        try:
            async with asyncio.TaskGroup() as group:
                sinks: list[SampleSink | EventSink | WebhookSink] = [
                    *self.sample_sinks,
                    *self.event_sinks,
                    *self.webhooks,
                ]
                for sink in sinks:
                    group.create_task(sink.run())
                self._readers = [group.create_task(feed.run()) for feed in self.feeds]
                if self.poller is not None:
                    self._readers.append(group.create_task(self.poller.run()))
                group.create_task(health.run())
        finally:
            await asyncio.shield(health.final())

    async def drain(self, timeout_s: float) -> bool:
        """A clean stop: stop reading (feeds commit what they may), hand out what waits
        (series of the interval, generations waiting for a score), then give every outbox
        up to `timeout_s` to empty. False if something was still queued then."""
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        exporters: list[SampleSink | EventSink] = [*self.sample_sinks, *self.event_sinks]
        for sink in exporters:
            if isinstance(sink, DatadogSeriesSink | DatadogEventsSink):
                sink.flush()
        outboxes: list[Outbox[Any]] = [s.outbox for s in exporters]
        outboxes += [w.outbox for w in self.webhooks]
        done = await asyncio.gather(*(o.drained(timeout_s) for o in outboxes))
        return all(done)

    async def ready(self, timeout_s: float = 60.0) -> None:
        """Wait until every feed reads its topic (tests produce only after this)."""
        await asyncio.wait_for(
            asyncio.gather(*(feed.ready.wait() for feed in self.feeds)), timeout_s
        )


@asynccontextmanager
async def open_sinks(settings: SinkSettings) -> AsyncIterator[Sinks]:
    """The sinks with their HTTP session and Redis client; closes both on exit."""
    redis = aioredis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    session = new_session(settings.sinks_http_timeout_s)
    try:
        yield Sinks(settings, redis, session)
    finally:
        await session.close()
        await redis.aclose()


async def print_health(settings: SinkSettings) -> None:
    """`genpulse sinks --status`: the health hash as JSON, one sink per key."""
    redis = aioredis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        health = await read_health(redis, settings.key_prefix)
    finally:
        await redis.aclose()
    print(orjson.dumps(health, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


async def serve(settings: SinkSettings) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly: drain for up to GENPULSE_SINKS_DRAIN_S,
    write the health hash a last time."""
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    if not settings.any_enabled:
        log.warning("no sink is enabled; see docs/integrations.md")
    async with open_sinks(settings) as sinks:
        names = [s.name for s in sinks.all_stats]
        log.info("sinks running: %s", ", ".join(names) or "none")
        running = asyncio.create_task(sinks.run())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            if not await sinks.drain(settings.sinks_drain_s):
                log.warning("stopped with items still queued (counted in the health hash)")
            running.cancel()
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
