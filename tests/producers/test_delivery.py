"""Every tracked event reaches Kafka exactly once, in order per session (real broker)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from producers.contract import decode_event
from producers.settings import GenPulseSettings
from tests.producers.conftest import ClientFactory, create_topic
from tests.producers.kafka_read import duplicates, in_session_order, read_topic

CALL_AT_MS = int(time.time() * 1000) - 3_600_001  # an hour ago, priced and stamped then


def test_each_event_once_and_in_session_order(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    topic = settings.topic("events")
    create_topic(settings.kafka_bootstrap, topic, partitions=3)
    client = make_client(flush_at=200)
    total, sessions = 20_000, 40
    for i in range(total):
        client.events.track("cache_hit", {"i": i}, session_id=f"session-{i % sessions}")
    assert client.flush(timeout=60)

    received = read_topic(settings.kafka_bootstrap, topic, expect=total)
    assert duplicates(received) == {}
    assert len(received) == total
    assert sorted(int(r.value["data"]["i"]) for r in received) == list(range(total))  # type: ignore[index]
    assert in_session_order(received)
    assert {r.key for r in received} == {f"session-{s}".encode() for s in range(sessions)}
    assert len({r.partition for r in received}) > 1, "sessions should spread over partitions"
    stats = client.stats()
    assert (stats.sent, stats.dropped, stats.failed, stats.buffered) == (total, 0, 0, 0)
    # the guard against duplicates after long outages is in place (see docs/sdk.md)
    producer = client._pipeline.sender._producer
    assert producer is not None and producer._message_accumulator._batch_ttl == float("inf")


def test_eight_threads_each_delivered_once(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    client = make_client()
    threads, per_thread = 8, 10_000
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            client.events.track("cache_miss", {"i": i}, session_id=f"thread-{t}-{i % 5}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert client.flush(timeout=120)

    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), threads * per_thread)
    assert duplicates(received) == {}
    assert len(received) == threads * per_thread
    assert in_session_order(received)
    assert client.stats().dropped == 0


def test_every_sdk_call_produces_contract_valid_events(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    client = make_client()
    s, u = "sess-1", "user-1"
    client.events.track("generation_started", session_id=s, user_id=u)
    client.events.track("phase_completed", {"phase": "analysis"}, session_id=s, user_id=u)
    client.costs.record_model_call(
        "claude-3-5-haiku-20241022",
        10,
        20,
        5,
        7,
        user_id=u,
        session_id=s,
        cache_write_1h_tokens=3,
        timestamp_ms=CALL_AT_MS,
    )
    client.costs.record_model_call("mystery-model", 10, 20, session_id=s)
    client.quality.record_quality_score(87.5, 0.9, session_id=s, user_id=u)
    client.quality.record_approval(True, 2, session_id=s)
    client.quality.record_approval(False, 5, session_id=s)
    for action in ("regenerated", "abandoned", "upgraded", "copied", "exported"):
        client.quality.record_user_action(action, session_id=s)
    client.quality.record_satisfaction(4, session_id=s)
    client.quality.record_nps(9, session_id=s)
    assert client.flush(timeout=30)

    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=14)
    events = [decode_event(orjson.dumps(r.value)) for r in received]
    kinds = [e.type.value for e in events]
    assert kinds == [
        "generation_started",
        "phase_completed",
        "model_called",
        "model_called",
        "quality_scored",
        "uvp_approved",
        "uvp_edited",
        "uvp_regenerated",
        "generation_canceled",
        "model_upgraded",
        "content_copied",
        "content_exported",
        "satisfaction_rated",
        "nps_rated",
    ]
    priced, unpriced = events[2].data, events[3].data
    assert priced["tier"] == "haiku" and priced["priced"] is True
    # claude-3-5-haiku's list price: 0.80 input, 4 output, 1 / 1.60 cache write 5 min / 1 h,
    # 0.08 cache read (USD per 1M tokens)
    assert priced["cost_nanousd"] == 10 * 800 + 20 * 4000 + 5 * 1000 + 3 * 1600 + 7 * 80
    assert priced["cache_write_1h_tokens"] == 3
    assert priced["price_source"] == "genai-prices" and priced["price_version"]
    assert events[2].timestamp == CALL_AT_MS
    assert unpriced["priced"] is False and "cost_nanousd" not in unpriced
    assert events[5].data == {"edits_made": 2} and events[6].data == {"edits_made": 5}
    assert all(e.service == "test-service" for e in events)


def test_a_model_call_is_priced_and_stamped_at_its_timestamp(
    make_client: ClientFactory, settings: GenPulseSettings, tmp_path: Path
) -> None:
    change = CALL_AT_MS + 1
    overlay = tmp_path / "prices.json"
    prices = [
        {"effective": "2020-01-01", "input": "0.10", "output": "0.40"},
        {
            "effective": datetime.fromtimestamp(change / 1000, UTC).isoformat(),
            "input": 1,
            "output": 4,
        },
    ]
    overlay.write_text(json.dumps({"version": "t", "models": {"acme-mini": {"prices": prices}}}))
    client = make_client(price_overlay=str(overlay))
    costs = client.costs
    old = costs.record_model_call("acme-mini", 1000, 1000, session_id="s", timestamp_ms=change - 1)
    new = costs.record_model_call("acme-mini", 1000, 1000, session_id="s", timestamp_ms=change)
    assert (old, new) == (Decimal("0.0005"), Decimal("0.005"))
    assert client.flush(timeout=30)
    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=2)
    events = [decode_event(orjson.dumps(r.value)) for r in received]
    assert [(e.timestamp, e.data["cost_nanousd"]) for e in events] == [
        (change - 1, 500_000),
        (change, 5_000_000),
    ]
    assert [e.data["price_source"] for e in events] == ["overlay", "overlay"]
    assert events[0].data["price_version"] == "t@2020-01-01T00:00:00Z"
    assert costs.get_costs()["total_cost_nanousd"] == 5_500_000


def test_measurements_arrive_as_one_metric_batch_per_flush(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    from producers.metric_batch import decode_metric_batch

    client = make_client()
    for ms in (100.0, 200.0, 300.0):
        client.performance.record_phase_time("synthesis", ms)
    client.performance.record_metric("time_to_first_byte_ms", 42.0, "ms")
    with client.performance.timer("render"):
        pass
    assert client.flush(timeout=30)

    received = read_topic(settings.kafka_bootstrap, settings.topic("metrics"), expect=1)
    assert len(received) == 1
    batch = decode_metric_batch(orjson.dumps(received[0].value))
    series = {(s.name, tuple(s.tags.items())): s for s in batch.series}
    phase = series[("phase_duration_ms", (("phase", "synthesis"),))]
    assert (phase.count, phase.sum, phase.min, phase.max) == (3, 600.0, 100.0, 300.0)
    assert series[("time_to_first_byte_ms", ())].count == 1
    assert series[("timer_duration_ms", (("label", "render"),))].count == 1
    assert batch.service == "test-service"
    assert client.stats().metric_batches_sent == 1


def test_flush_waits_for_every_round_not_just_the_first(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    client = make_client(max_buffer_events=200, flush_at=1_000_000)  # rounds of 100 events
    for i in range(190):
        client.events.track("cache_hit", {"i": i}, session_id="s")
    assert client.flush(timeout=30)
    assert client.stats().sent == 190


def test_async_code_tracks_and_awaits_flush_without_blocking_the_loop(
    make_client: ClientFactory, settings: GenPulseSettings
) -> None:
    import asyncio

    client = make_client()

    async def handler(i: int) -> None:
        client.events.track("cache_hit", {"i": i}, session_id=f"async-{i % 4}")
        await asyncio.sleep(0)

    async def main() -> tuple[bool, int]:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        await asyncio.gather(*(handler(i) for i in range(500)))
        before = ticks
        delivered = await client.aflush(timeout=30)
        beat.cancel()
        return delivered, ticks - before

    delivered, ticks = asyncio.run(main())
    assert delivered and ticks > 0  # the loop kept running while the flush waited
    received = read_topic(settings.kafka_bootstrap, settings.topic("events"), expect=500)
    assert len(received) == 500 and duplicates(received) == {}
