"""Alert webhooks: exact Slack and plain JSON, de-duplication by alert id (also across a
restart), and the consumer offset committed only after delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.sinks import SinkSettings
from tests.sinks.endpoints import HttpRecorder, wait_until
from tests.sinks.harness import health_of, produce_json, running

SLACK_PATH = "/services/T000/B000/secret-token"


def alert(status: str = "fired", **fields: Any) -> dict[str, Any]:
    record = {
        "v": 1,
        "id": "budget:global:2026-11-26:0.8",
        "rule": "budget",
        "status": status,
        "severity": "alert",
        "scope": "global",
        "value": 80.4,
        "threshold": 80.0,
        "window": "2026-11-26",
        "time_ms": 1_764_130_000_000,
        "message": "global spend at 80.4 % of $100",
    }
    record.update(fields)
    return record


SLACK_BODY = {
    "text": ":rotating_light: [ALERT] global spend at 80.4 % of $100",
    "blocks": [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": "[ALERT] global spend at 80.4 % of $100"},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Rule*\nbudget"},
                {"type": "mrkdwn", "text": "*Scope*\nglobal"},
                {"type": "mrkdwn", "text": "*Status*\nfired"},
                {"type": "mrkdwn", "text": "*Severity*\nalert"},
                {"type": "mrkdwn", "text": "*Value*\n80.4"},
                {"type": "mrkdwn", "text": "*Threshold*\n80.0"},
                {"type": "mrkdwn", "text": "*Window*\n2026-11-26"},
            ],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "genpulse alert `budget:global:2026-11-26:0.8` at "
                    "2025-11-26 04:06:40 UTC",
                }
            ],
        },
    ],
}


async def committed(settings: SinkSettings) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=f"{settings.topic_prefix}.sinks.alerts"
    )
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(settings.topic("alerts"), 0))
        return offset
    finally:
        await consumer.stop()


async def test_slack_and_plain_bodies_and_dedup_across_restart(
    sink_settings: Callable[..., SinkSettings], http: HttpRecorder, redis: aioredis.Redis
) -> None:
    settings = sink_settings(
        webhook_slack_urls=f"{http.base_url}{SLACK_PATH}",
        webhook_plain_urls=f"{http.base_url}/plain",
    )
    second = alert(id="latency_slo:ttfb-p95:1764130000000", rule="latency_slo", severity="warning")
    async with running(settings) as sinks:
        names = sorted(n for n in await sinks.health() if n.startswith("webhook:"))
        assert len(names) == 2
        await produce_json(settings, "alerts", [alert(), alert(), alert("resolved"), second])
        await wait_until(lambda: len(http.requests) >= 6, what="6 webhook posts")

        async def duplicates_counted() -> bool:
            counts = [(await health_of(redis, settings, n)).get("duplicate") for n in names]
            return counts == [1, 1]

        async def all_settled() -> bool:
            counts = [(await health_of(redis, settings, n)).get("sent") for n in names]
            return counts == [3, 3]

        await wait_until(duplicates_counted, what="one duplicate per webhook in health")
        await wait_until(all_settled, what="three deliveries per webhook settled")
    slack = [r.body for r in http.to(SLACK_PATH)]
    plain = [r.body for r in http.to("/plain")]
    assert slack[0] == SLACK_BODY
    assert slack[1]["text"].startswith(":white_check_mark: [RESOLVED] ")
    assert plain == [alert(), alert("resolved"), second]  # the record itself, once per id+status
    assert await committed(settings) == 4
    assert "secret-token" not in str(names)

    # a restart: the id set in Redis still knows what was delivered
    async with running(settings):
        third = alert(id="budget:global:2026-11-26:0.9", severity="critical")
        await produce_json(settings, "alerts", [alert(), third])
        await wait_until(lambda: len(http.to("/plain")) >= 4, what="the new alert")
        await wait_until(duplicates_counted, what="the old alert known as delivered")
    assert [r.body for r in http.to("/plain")][3:] == [third]
    assert len(http.to(SLACK_PATH)) == 4


async def test_offset_waits_for_delivery(
    sink_settings: Callable[..., SinkSettings], http: HttpRecorder
) -> None:
    http.status = 503  # the receiver is failing: keep retrying, do not commit
    settings = sink_settings(
        webhook_plain_urls=f"{http.base_url}/plain",
        sinks_max_attempts=1000,
        sinks_backoff_max_s=0.1,
    )
    async with running(settings):
        await produce_json(settings, "alerts", [alert()])
        await wait_until(lambda: len(http.requests) >= 3, what="3 tries")
        assert await committed(settings) is None
        http.status = 200

        async def offset_is_one() -> bool:
            return await committed(settings) == 1

        await wait_until(offset_is_one, what="offset 1 committed after delivery")
