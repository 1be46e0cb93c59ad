"""Alert webhooks: each alert record from `<prefix>.alerts` POSTed once per URL.

Two body forms: Slack-compatible (`{"text", "blocks"}`, for Slack incoming webhooks and
the many tools that accept them) and plain (the alert record itself, as in docs/topics.md).

De-duplication is by alert id and status (a rule's episode fires and later resolves under
the same id): a key delivered before, or already queued, is not sent again. Delivered keys
are remembered in memory and in a Redis sorted set per URL (newest `dedup_size` kept), so
they survive a restart. A URL is a secret (it carries the token): logs, errors and the
health hash name a webhook by a short hash of its URL only.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from streams.sinks.delivery import Outbox, Outcome, RetryPolicy
from streams.sinks.health import SinkStats
from streams.sinks.http import post_json

log = logging.getLogger("genpulse.sinks")

SEVERITY_MARK = {
    "warning": ":warning:",
    "alert": ":rotating_light:",
    "critical": ":red_circle:",
    "stop": ":no_entry:",
}


@dataclass(frozen=True)
class AlertItem:
    """One alert record and where it came from (for the offset commit after delivery)."""

    alert: dict[str, Any]
    partition: int
    offset: int


def dedup_key(alert: dict[str, Any]) -> str:
    return f"{alert['id']}|{alert.get('status', 'fired')}"


def webhook_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:10]


def slack_body(alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack message: `text` for notifications, `blocks` for the layout."""
    status = str(alert.get("status", "fired"))
    severity = str(alert.get("severity", ""))
    resolved = status == "resolved"
    mark = ":white_check_mark:" if resolved else SEVERITY_MARK.get(severity, ":bell:")
    label = "RESOLVED" if resolved else severity.upper() or "ALERT"
    headline = f"[{label}] {alert.get('message', alert['id'])}"
    when = _when(alert.get("time_ms"))
    fields = [
        ("Rule", alert.get("rule")),
        ("Scope", alert.get("scope")),
        ("Status", status),
        ("Severity", severity),
        ("Value", alert.get("value")),
        ("Threshold", alert.get("threshold")),
        ("Window", alert.get("window")),
    ]
    return {
        "text": f"{mark} {headline}"[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{value}"[:2000]}
                    for name, value in fields
                    if value is not None and value != ""
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"genpulse alert `{alert['id']}` at {when}",
                    }
                ],
            },
        ],
    }


def _when(time_ms: object) -> str:
    """The alert's time for people; a record without a usable time still gets delivered."""
    if isinstance(time_ms, int | float) and not isinstance(time_ms, bool):
        try:
            return f"{datetime.fromtimestamp(time_ms / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC"
        except (ValueError, OverflowError, OSError):
            pass
    return "an unknown time"


def plain_body(alert: dict[str, Any]) -> dict[str, Any]:
    return alert


class WebhookSink:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        redis: aioredis.Redis,
        *,
        prefix: str,
        url: str,
        form: str,
        dedup_size: int,
        capacity: int,
        retry: RetryPolicy,
        on_settled: Callable[[AlertItem, Outcome], None] | None = None,
    ) -> None:
        if form not in ("slack", "plain"):
            raise ValueError(f"webhook form must be 'slack' or 'plain', not {form!r}")
        self._session = session
        self._redis = redis
        self._url = url
        self._build = slack_body if form == "slack" else plain_body
        self._dedup_size = dedup_size
        self.name = f"webhook:{form}:{webhook_id(url)}"
        self._key = f"{prefix}:sinks:{self.name}:delivered"
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._queued: set[str] = set()
        self._on_settled = on_settled
        self.stats = SinkStats(self.name)
        self.outbox: Outbox[AlertItem] = Outbox(
            self.stats, self._deliver, capacity=capacity, retry=retry, on_settled=self._settled
        )

    async def load(self) -> None:
        """Remember the ids delivered before this process started (the newest `dedup_size`)."""
        try:
            keys = await self._redis.zrange(self._key, -self._dedup_size, -1)
        except Exception as exc:  # Redis down: offsets still keep delivered alerts behind us
            log.warning("%s: delivered ids not loaded: %s", self.name, exc)
            return
        for key in keys:
            self._remember(key.decode() if isinstance(key, bytes) else str(key))

    def offer(self, item: AlertItem) -> bool:
        """Queue one alert; False (and counted) if it is a duplicate."""
        key = dedup_key(item.alert)
        if key in self._delivered or key in self._queued:
            self.stats.duplicate += 1
            return False
        self._queued.add(key)
        self.outbox.offer(item)
        return True

    async def run(self) -> None:
        await self.outbox.run()

    async def _deliver(self, batch: list[AlertItem]) -> int:
        for item in batch:
            await post_json(self._session, self._url, self._build(item.alert), label=self.name)
            await self._save(dedup_key(item.alert))
        return 0

    async def _save(self, key: str) -> None:
        """Add a delivered key to the Redis set (before the offset commit that follows)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self._key, {key: time.time()})
                pipe.zremrangebyrank(self._key, 0, -self._dedup_size - 1)
                await pipe.execute()
        except Exception as exc:  # Redis down: the in-memory set still de-duplicates
            log.warning("%s: delivered id not saved: %s", self.name, exc)

    def _settled(self, item: AlertItem, outcome: Outcome) -> None:
        key = dedup_key(item.alert)
        self._queued.discard(key)
        if outcome is Outcome.SENT:
            self._remember(key)
        if self._on_settled is not None:
            self._on_settled(item, outcome)

    def _remember(self, key: str) -> None:
        self._delivered[key] = None
        self._delivered.move_to_end(key)
        while len(self._delivered) > self._dedup_size:
            self._delivered.popitem(last=False)
