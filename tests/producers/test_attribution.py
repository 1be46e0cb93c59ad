"""pulse.session(): reports inside the block default to its session and user."""

from __future__ import annotations

import asyncio

import pytest

from tests.producers.conftest import ClientFactory

pytestmark = pytest.mark.integration


def ids(client: object) -> list[tuple[str, str | None]]:
    return [(e["session_id"], e["user_id"]) for e in client.events.get_events()]  # type: ignore[attr-defined]


def test_the_block_fills_in_missing_ids_and_explicit_ones_win(make_client: ClientFactory) -> None:
    pulse = make_client(local_view_size=100)
    with pulse.session("s-outer", user_id="u-outer"):
        pulse.events.track("generation_started")
        pulse.events.track("generation_started", session_id="s-own")
        with pulse.session("s-inner"):  # the user carries over from the outer block
            pulse.events.track("generation_started")
        pulse.costs.record_model_call("claude-3-5-haiku", 10, 5)
    pulse.events.track("generation_started")
    assert ids(pulse) == [
        ("s-outer", "u-outer"),
        ("s-own", "u-outer"),
        ("s-inner", "u-outer"),
        ("s-outer", "u-outer"),
        (pulse._pipeline.default_session_id, None),
    ]


async def test_each_asyncio_task_keeps_its_own_session(make_client: ClientFactory) -> None:
    pulse = make_client(local_view_size=100)

    async def work(n: int) -> None:
        with pulse.session(f"s{n}", user_id=f"u{n}"):
            await asyncio.sleep(0.01 * (3 - n))  # interleave the tasks
            pulse.events.track("generation_started")

    await asyncio.gather(*(work(n) for n in range(3)))
    assert sorted(ids(pulse)) == [("s0", "u0"), ("s1", "u1"), ("s2", "u2")]
