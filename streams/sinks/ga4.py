"""GA4 Measurement Protocol: generation lifecycle and user actions, POSTed to /mp/collect.

GA4 answers 2xx even for events it then discards, so its naming rules are enforced here,
before sending: an event whose name breaks them is dropped and counted with the reason;
a parameter whose name breaks them is left out (counted); a long string value is cut to
100 characters (counted). One request carries one client's events, at most 25.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from pydantic import SecretStr

from producers.contract import Event
from streams.sinks.delivery import Outbox, RetryPolicy
from streams.sinks.health import SinkStats
from streams.sinks.http import post_json

MAX_EVENTS_PER_REQUEST = 25
MAX_PARAMS_PER_EVENT = 25
MAX_NAME_CHARS = 40
MAX_VALUE_CHARS = 100
MAX_AGE_MS = 72 * 3600 * 1000  # GA4 discards events whose time is older than 72 hours
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESERVED_PREFIXES = ("firebase_", "google_", "ga_", "gtag.")
RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
        "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_install",
        "app_remove", "app_store_refund", "app_update", "app_upgrade", "dynamic_link_app_open",
        "dynamic_link_app_update", "dynamic_link_first_open", "error", "firebase_campaign",
        "first_open", "first_visit", "in_app_purchase", "notification_dismiss",
        "notification_foreground", "notification_open", "notification_receive",
        "notification_send", "os_update", "screen_view", "session_start", "user_engagement",
    }
)  # fmt: skip


def name_problem(name: str, kind: str) -> str | None:
    """Why `name` breaks GA4's rules for an event or param name (`kind`), or None if it is fine."""
    if not name:
        return f"{kind}_name_empty"
    if len(name) > MAX_NAME_CHARS:
        return f"{kind}_name_too_long"
    if not NAME_PATTERN.fullmatch(name):
        return f"{kind}_name_invalid_chars"
    if name.lower().startswith(RESERVED_PREFIXES):
        return f"{kind}_name_reserved_prefix"
    if kind == "event" and name in RESERVED_EVENT_NAMES:
        return "event_name_reserved"
    return None


def ga4_session_id(session_id: str) -> int:
    """GA4 wants a number: digits pass through, anything else maps to a stable 48-bit hash."""
    if session_id.isascii() and session_id.isdigit() and len(session_id) <= 15:
        return int(session_id)
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:6], "big")


@dataclass(frozen=True)
class Ga4Event:
    client_id: str
    user_id: str | None
    name: str
    params: dict[str, str | int | float]
    timestamp_ms: int = 0  # when it happened; 0 = let GA4 use the time it arrives

    @property
    def client(self) -> tuple[str, str | None]:
        return (self.client_id, self.user_id)


@dataclass
class Mapped:
    event: Ga4Event | None
    rejected: str | None  # why the event is not sent at all
    notes: list[str]  # parameters left out or cut


def to_ga4(event: Event, names: Mapping[str, str]) -> Mapped:
    """One genpulse event as a GA4 event, validated; never raises."""
    name = names.get(event.type.value, event.type.value)
    if problem := name_problem(name, "event"):
        return Mapped(None, problem, [])
    data = event.data
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        client_id = event.user_id or event.session_id
    engagement = data.get("engagement_time_msec", data.get("duration_ms", 1))
    candidates: list[tuple[str, Any]] = [
        ("session_id", ga4_session_id(event.session_id)),
        ("engagement_time_msec", max(1, int(engagement)) if _number(engagement) else 1),
        ("service", event.service),
        ("event_id", event.event_id),
    ]
    candidates += [(k, v) for k, v in data.items() if k not in _PLACED]
    params, notes = _params(candidates)
    ga4 = Ga4Event(client_id, event.user_id, name, params, event.timestamp)
    return Mapped(ga4, None, notes)


_PLACED = frozenset({"client_id", "engagement_time_msec", "session_id", "service", "event_id"})


def _params(candidates: list[tuple[str, Any]]) -> tuple[dict[str, str | int | float], list[str]]:
    params: dict[str, str | int | float] = {}
    notes: list[str] = []
    for key, value in candidates:
        if problem := name_problem(key, "param"):
            notes.append(problem)
            continue
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, str | int | float):
            notes.append("param_not_scalar")
            continue
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS]
            notes.append("param_value_truncated")
        if len(params) == MAX_PARAMS_PER_EVENT:
            notes.append("param_over_limit")
            continue
        params[key] = value
    return params, notes


def request_body(events: list[Ga4Event]) -> dict[str, Any]:
    """One /mp/collect body: one client's events (1..25 of them)."""
    if not 1 <= len(events) <= MAX_EVENTS_PER_REQUEST:
        raise ValueError(f"a GA4 request carries 1..25 events, not {len(events)}")
    first = events[0]
    if any(e.client != first.client for e in events):
        raise ValueError("a GA4 request carries the events of one client only")
    body: dict[str, Any] = {"client_id": first.client_id}
    if first.user_id:
        body["user_id"] = first.user_id
    if first.timestamp_ms:  # a late (retried) request still lands at the events' time
        body["timestamp_micros"] = first.timestamp_ms * 1000
    body["events"] = [{"name": e.name, "params": e.params} for e in events]
    return body


class Ga4Sink:
    name = "ga4"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        measurement_id: str,
        api_secret: SecretStr,
        event_types: tuple[str, ...],
        event_names: Mapping[str, str],
        capacity: int,
        retry: RetryPolicy,
        linger_s: float = 1.0,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._measurement_id = measurement_id
        self._api_secret = api_secret
        self._types = frozenset(event_types)
        self._names = dict(event_names)
        self.stats = SinkStats(self.name)
        self.outbox: Outbox[Ga4Event] = Outbox(
            self.stats,
            self._deliver,
            capacity=capacity,
            retry=retry,
            batch_size=MAX_EVENTS_PER_REQUEST,
            linger_s=linger_s,
            key=lambda e: e.client,
        )

    def offer(self, event: Event) -> None:
        if event.type.value not in self._types:
            return
        mapped = to_ga4(event, self._names)
        for note in mapped.notes:
            self.stats.note(note)
        if mapped.event is None:
            self.stats.reject(mapped.rejected or "invalid")
            return
        if time.time() * 1000 - event.timestamp > MAX_AGE_MS - 3600 * 1000:  # an hour to spare
            self.stats.reject("event_too_old")
            return
        self.outbox.offer(mapped.event)

    async def run(self) -> None:
        await self.outbox.run()

    async def _deliver(self, batch: list[Ga4Event]) -> int:
        query = urlencode(
            {
                "measurement_id": self._measurement_id,
                "api_secret": self._api_secret.get_secret_value(),
            }
        )
        url = f"{self._endpoint}/mp/collect?{query}"
        await post_json(self._session, url, request_body(batch))
        return 0


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
