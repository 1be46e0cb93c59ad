"""Events per second one process delivers into Kafka through the SDK, and bytes per buffered event.

Run: .venv/bin/python bench/sdk_throughput.py [--duration 60] [--bootstrap HOST:PORT]

Throughput: one thread calls track() as fast as it can for --duration seconds (pausing
only while more than 60,000 events are pending, so nothing is dropped); the figure is events
acknowledged by Kafka divided by the time until the final flush returned. Baseline, same
run, same broker, same events: the plain aiokafka way, one `await producer.send()` per
event (idempotent, acks=all, lz4) with the JSON encoded per event.

Memory: tracked events held while Kafka is unreachable, measured with tracemalloc and
divided by the number held; baseline: the same event as a (tight) encoded JSON bytes object.
Targets (issue 3): >= 100,000 events/s; <= 300 bytes per buffered event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import tracemalloc
import uuid

import orjson
from aiokafka import AIOKafkaProducer

from genpulse.devservices.ports import free_port
from producers import GenPulse
from streams.settings import WorkerSettings
from streams.topics import ensure_topics

SESSIONS = [f"session-{i:05d}" for i in range(1000)]
DATA = {"phase": "analysis"}


def sdk_events_per_s(bootstrap: str, duration_s: float) -> tuple[float, int, int]:
    prefix = f"bench-sdk-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(WorkerSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix)))
    pulse = GenPulse(
        service="bench-throughput",
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        follow_budget_state=False,
        local_view_size=0,
        flush_at=500,
    )
    track, buffer = pulse.events.track, pulse._pipeline.buffer
    began = time.monotonic()
    tracked = 0
    while time.monotonic() - began < duration_s:
        for _ in range(1000):
            track("phase_completed", DATA, session_id=SESSIONS[tracked % 1000], user_id="u-1")
            tracked += 1
        while buffer.pending()[0] > 60_000:  # stay clear of the 100,000-event limit
            time.sleep(0.001)
    assert pulse.flush(timeout=120), pulse.stats()
    elapsed = time.monotonic() - began
    stats = pulse.stats()
    pulse.close(timeout=5)
    return stats.sent / elapsed, stats.sent, stats.dropped


async def aiokafka_events_per_s(bootstrap: str, duration_s: float) -> tuple[float, int]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type="lz4",
        max_batch_size=1_000_000,
    )
    topic = f"bench-plain-{uuid.uuid4().hex[:8]}.events"
    await producer.start()
    try:
        began = time.monotonic()
        sent = 0
        pending = []
        while time.monotonic() - began < duration_s:
            for _ in range(1000):
                value = orjson.dumps(
                    {
                        "v": 1,
                        "type": "phase_completed",
                        "event_id": uuid.uuid4().hex,
                        "timestamp": int(time.time() * 1000),
                        "session_id": SESSIONS[sent % 1000],
                        "user_id": "u-1",
                        "service": "bench",
                        "data": DATA,
                    }
                )
                pending.append(
                    await producer.send(topic, value, key=SESSIONS[sent % 1000].encode())
                )
                sent += 1
            await asyncio.gather(*pending[:-1000])
            del pending[:-1000]
        await asyncio.gather(*pending)
        return sent / (time.monotonic() - began), sent
    finally:
        await producer.stop()


def bytes_per_buffered_event(count: int = 100_000) -> tuple[float, float]:
    pulse = GenPulse(
        service="bench-memory",
        bootstrap_servers=f"127.0.0.1:{free_port()}",  # nothing listens: everything stays
        follow_budget_state=False,
        local_view_size=0,
        flush_at=10**9,
        retry_initial_backoff_s=5.0,
    )
    track = pulse.events.track
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(count):
        track(
            "phase_completed", {"phase": "analysis"}, session_id=SESSIONS[i % 1000], user_id="u-1"
        )
    held, peak = tracemalloc.get_traced_memory()
    encoded = [  # tight copies: orjson's own bytes keep a 4 KiB allocation each
        bytes(
            memoryview(
                orjson.dumps(
                    {
                        "v": 1,
                        "type": "phase_completed",
                        "event_id": uuid.uuid4().hex,
                        "timestamp": 1764130000000 + i,
                        "session_id": SESSIONS[i % 1000],
                        "user_id": "u-1",
                        "service": "bench-memory",
                        "data": {"phase": "analysis"},
                    }
                )
            )
        )
        for i in range(count)
    ]
    with_encoded = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert pulse.stats().buffered == count
    del encoded
    pulse.close(timeout=0)
    return (peak - base) / count, (with_encoded - held) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per variant")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("GENPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    args = parser.parse_args()

    sdk_rate, sdk_sent, dropped = sdk_events_per_s(args.bootstrap, args.duration)
    print(f"SDK: {sdk_rate:,.0f} events/s ({sdk_sent:,} delivered, {dropped} dropped)")
    plain_rate, plain_sent = asyncio.run(aiokafka_events_per_s(args.bootstrap, args.duration))
    print(f"plain aiokafka send(): {plain_rate:,.0f} events/s ({plain_sent:,} delivered)")
    per_event, per_encoded = bytes_per_buffered_event()
    print(f"memory: {per_event:.0f} bytes per buffered event; encoded JSON alone {per_encoded:.0f}")
    print(
        json.dumps(
            {
                "bench": "sdk_throughput",
                "duration_s": args.duration,
                "sdk_events_per_s": round(sdk_rate),
                "baseline_aiokafka_send_events_per_s": round(plain_rate),
                "ratio": round(sdk_rate / plain_rate, 2),
                "sdk_dropped": dropped,
                "bytes_per_buffered_event": round(per_event),
                "baseline_encoded_json_bytes_per_event": round(per_encoded),
                "memory_ratio": round(per_event / per_encoded, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
