"""GA4 Measurement Protocol bodies as a local server receives them: exact JSON, 25-event
requests per client, names checked before sending (bad ones counted in health, never sent)."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis

from producers.events import EventType
from streams.sinks import SinkSettings
from streams.sinks.ga4 import ga4_session_id
from tests.sinks.endpoints import HttpRecorder, wait_until
from tests.sinks.harness import health_of, produce_events, running
from tests.unit.test_contract import NOW_MS, make_event


async def test_ga4_bodies_split_and_validation(
    sink_settings: Callable[..., SinkSettings], http: HttpRecorder, redis: aioredis.Redis
) -> None:
    settings = sink_settings(
        ga4_measurement_id="G-TEST123",
        ga4_api_secret="mp-secret-1",
        ga4_endpoint=http.base_url,
        ga4_event_names={
            "uvp_approved": "approve_content",
            "uvp_edited": "firebase_edit",  # reserved prefix: never sent
            "content_copied": "c" * 41,  # too long: never sent
        },
    )
    regenerated = [
        make_event(EventType.UVP_REGENERATED, user_id="u-1", data={"attempt": i}) for i in range(30)
    ]
    approved = make_event(
        EventType.UVP_APPROVED,
        session_id="sess-42",
        user_id="u-2",
        event_id="ev-approved",
        data={
            "variant": "b",
            "bad-key": 1,
            "google_thing": 2,
            "nested": {"no": 1},
            "long": "y" * 150,
            "fast": True,
        },
    )
    others = [
        make_event(EventType.UVP_EDITED, user_id="u-2", data={}),
        make_event(EventType.CONTENT_COPIED, user_id="u-2", data={}),
        make_event(EventType.CACHE_HIT, user_id="u-2", data={}),  # not a GA4 type: ignored
        make_event(EventType.UVP_APPROVED, user_id="u-3", timestamp=NOW_MS - 73 * 3600_000),
    ]
    async with running(settings):
        await produce_events(settings, [*regenerated, approved, *others])
        await wait_until(
            lambda: sum(len(r.body["events"]) for r in http.to("/mp/collect")) >= 31,
            what="31 GA4 events",
        )

        async def all_counted() -> bool:
            return (await health_of(redis, settings, "ga4")).get("sent") == 31

        await wait_until(all_counted, what="ga4 health to show 31 sent")

    requests = http.to("/mp/collect")
    query = {"measurement_id": "G-TEST123", "api_secret": "mp-secret-1"}
    assert all(r.query == query for r in requests)
    assert all(1 <= len(r.body["events"]) <= 25 for r in requests)
    for_u1 = [r.body for r in requests if r.body["client_id"] == "u-1"]
    assert len(for_u1[0]["events"]) == 25
    assert sum(len(b["events"]) for b in for_u1) == 30
    attempts = [e["params"]["attempt"] for b in for_u1 for e in b["events"]]
    assert attempts == list(range(30))  # order kept across the split
    assert all(b["user_id"] == "u-1" for b in for_u1)

    (for_u2,) = [r.body for r in requests if r.body["client_id"] == "u-2"]
    assert for_u2 == {
        "client_id": "u-2",
        "user_id": "u-2",
        "timestamp_micros": NOW_MS * 1000,
        "events": [
            {
                "name": "approve_content",
                "params": {
                    "session_id": ga4_session_id("sess-42"),
                    "engagement_time_msec": 1,
                    "service": "uvp-generator",
                    "event_id": "ev-approved",
                    "variant": "b",
                    "long": "y" * 100,
                    "fast": 1,
                },
            }
        ],
    }
    health = await health_of(redis, settings, "ga4")
    assert health["sent"] == 31
    assert health["invalid"] == 3
    assert health["reasons"] == {
        "event_too_old": 1,
        "event_name_reserved_prefix": 1,
        "event_name_too_long": 1,
        "param_name_invalid_chars": 1,
        "param_name_reserved_prefix": 1,
        "param_not_scalar": 1,
        "param_value_truncated": 1,
    }
