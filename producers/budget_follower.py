"""Follow the compacted budget-state topic into a BudgetView, on the sender's loop.

Reads every partition from the beginning without a consumer group, so each client has the
latest state of every scope. It waits for the topic to exist instead of auto-creating it
(the worker creates it compacted). Records that existed when it started set the baseline
without firing threshold callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from producers.budget import BudgetView
from producers.settings import GenPulseSettings

TOPIC_POLL_S = 2.0


async def follow_budget_state(
    settings: GenPulseSettings,
    service: str,
    view: BudgetView,
    on_error: Callable[[BaseException], None],
) -> None:
    """Run until cancelled; reconnects with backoff and jitter after any error."""
    topic = settings.topic("budget-state")
    attempt = 0
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"genpulse-{service}-budget",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        try:
            await consumer.start()
            while topic not in await consumer.topics():
                await asyncio.sleep(TOPIC_POLL_S)
            consumer.subscribe([topic])  # no group: every partition is assigned to us
            while not consumer.assignment():
                await asyncio.sleep(0.05)
            ends = await consumer.end_offsets(list(consumer.assignment()))
            attempt = 0
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batches.items():
                    for message in messages:
                        view.apply(message.key, message.value, quiet=message.offset < ends[tp])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            on_error(exc)
            attempt += 1
            await asyncio.sleep(random.uniform(0.5, 1.0) * min(10.0, 0.5 * 2**attempt))
        finally:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(consumer.stop(), 2.0)
