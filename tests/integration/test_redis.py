"""The Redis fixture is a real server that keeps keys and delivers pub/sub."""

from __future__ import annotations

import redis.asyncio as aioredis


async def test_redis_stores_and_publishes(redis_url: str, unique: str) -> None:
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(f"{unique}:updates")
        await pubsub.get_message(timeout=2)  # the subscribe confirmation
        await client.set(f"{unique}:k", "v")
        assert await client.get(f"{unique}:k") == b"v"
        assert await client.publish(f"{unique}:updates", "hello") == 1
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
        assert message is not None and message["data"] == b"hello"
    finally:
        await pubsub.aclose()
        await client.aclose()
