"""The outbox: bounded, never waits on offer, retries with backoff, batches per key, and every
item ends counted exactly once (sent, failed or dropped)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sinks.delivery import DeliveryError, Outbox, Outcome, RetryPolicy
from streams.sinks.health import SinkStats

NO_WAIT = RetryPolicy(max_attempts=3, base_s=0.001, max_s=0.002)


@given(
    st.integers(1, 60),
    st.floats(0.001, 5),
    st.floats(0.01, 120),
    st.floats(0, 1, exclude_max=True),
)
def test_backoff_doubles_up_to_the_cap_with_jitter(
    attempt: int, base: float, cap: float, rand: float
) -> None:
    policy = RetryPolicy(max_attempts=99, base_s=base, max_s=cap)
    step = min(cap, base * 2 ** (attempt - 1))
    delay = policy.delay(attempt, rand)
    assert step / 2 <= delay <= step
    assert policy.delay(attempt, 0.0) <= policy.delay(attempt + 1, 0.0)


async def run_until_drained(outbox: Outbox[int], items: list[int]) -> None:
    task = asyncio.create_task(outbox.run())
    for item in items:
        outbox.offer(item)
    assert await outbox.drained(10)
    task.cancel()


async def test_a_full_outbox_drops_its_oldest_and_counts_it() -> None:
    delivered: list[list[int]] = []

    async def deliver(batch: list[int]) -> int:
        delivered.append(batch)
        return 0

    stats = SinkStats("t")
    settled: list[tuple[int, Outcome]] = []
    outbox = Outbox(
        stats,
        deliver,
        capacity=3,
        retry=NO_WAIT,
        batch_size=10,
        on_settled=lambda item, outcome: settled.append((item, outcome)),
    )
    for item in range(5):  # nothing runs yet: offer alone must cope
        outbox.offer(item)
    assert (stats.dropped, stats.queued, len(outbox)) == (2, 3, 3)
    await run_until_drained(outbox, [])
    assert delivered == [[2, 3, 4]]
    assert settled == [(0, Outcome.DROPPED), (1, Outcome.DROPPED)] + [
        (i, Outcome.SENT) for i in (2, 3, 4)
    ]
    assert (stats.sent, stats.queued) == (3, 0)


async def test_retryable_errors_are_retried_then_sent() -> None:
    calls = 0

    async def flaky(batch: list[int]) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise DeliveryError("503")
        return 0

    stats = SinkStats("t")
    await run_until_drained(Outbox(stats, flaky, capacity=10, retry=NO_WAIT), [7])
    assert (calls, stats.retries, stats.sent, stats.failed) == (3, 2, 1, 0)
    assert stats.last_error == "503"


async def test_a_permanent_error_fails_at_once_and_a_bug_never_stops_the_outbox() -> None:
    async def refuse(batch: list[int]) -> int:
        if batch == [1]:
            raise DeliveryError("400", retryable=False)
        if batch == [2]:
            raise RuntimeError("bug")
        return 0

    stats = SinkStats("t")
    await run_until_drained(Outbox(stats, refuse, capacity=10, retry=NO_WAIT), [1, 2, 3])
    assert (stats.retries, stats.failed, stats.sent) == (0, 2, 1)


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(st.sampled_from("abc"), max_size=80),
    capacity=st.integers(1, 30),
    batch_size=st.integers(1, 25),
    failures=st.lists(st.booleans(), max_size=30),
)
def test_batches_keep_keys_apart_order_and_count_everything(
    keys: list[str], capacity: int, batch_size: int, failures: list[bool]
) -> None:
    items = list(enumerate(keys))  # (sequence number, client)
    outcomes = iter(failures)
    batches: list[list[tuple[int, str]]] = []

    async def deliver(batch: list[tuple[int, str]]) -> int:
        if next(outcomes, False):
            raise DeliveryError("down")
        batches.append(batch)
        return 0

    stats = SinkStats("t")
    settled: dict[Outcome, int] = defaultdict(int)

    async def scenario() -> None:
        outbox: Outbox[tuple[int, str]] = Outbox(
            stats,
            deliver,
            capacity=capacity,
            retry=NO_WAIT,
            batch_size=batch_size,
            key=lambda item: item[1],
            on_settled=lambda _item, outcome: settled.__setitem__(outcome, settled[outcome] + 1),
        )
        task = asyncio.create_task(outbox.run())
        for item in items:
            outbox.offer(item)
            if item[0] % 7 == 0:
                await asyncio.sleep(0)  # let delivery interleave with offers
        assert await outbox.drained(10)
        task.cancel()

    asyncio.run(scenario())
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        assert len({client for _, client in batch}) == 1
    for client in "abc":
        sent = [n for batch in batches for n, c in batch if c == client]
        assert sent == sorted(sent)
    assert stats.sent + stats.failed + stats.dropped == len(items)
    assert dict(settled) == {
        o: n
        for o, n in {
            Outcome.SENT: stats.sent,
            Outcome.FAILED: stats.failed,
            Outcome.DROPPED: stats.dropped,
        }.items()
        if n
    }
    assert stats.queued == 0


def test_outbox_needs_a_running_loop_only_to_deliver() -> None:
    async def never(batch: list[int]) -> int:
        raise AssertionError("not called")

    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    outbox = Outbox(SinkStats("t"), never, capacity=1, retry=NO_WAIT)
    outbox.offer(1)
    outbox.offer(2)
    assert outbox.stats.dropped == 1
