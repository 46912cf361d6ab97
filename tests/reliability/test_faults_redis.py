"""The bot's Redis client after a Redis restart: every pooled connection is dead; none of the
commands that follow may fail (a participant would be told the storage is down)."""

from __future__ import annotations

import asyncio

import pytest

from bot.core import connect
from devstack.redis_servers import RedisServer

pytestmark = pytest.mark.reliability


async def test_commands_after_a_redis_restart_reconnect(private_redis: RedisServer) -> None:
    client = connect(private_redis.url)
    try:
        # Fill the pool with several connections, as concurrent clicks do.
        await asyncio.gather(*(client.set(f"k{i}", i) for i in range(10)))
        private_redis.kill()
        private_redis.start()
        await asyncio.sleep(0.2)
        for _ in range(3):
            assert await asyncio.gather(*(client.get("k1") for _ in range(10))) == [b"1"] * 10
        async with client.pipeline(transaction=True) as pipe:
            pipe.get("k2")
            assert await pipe.execute() == [b"2"]
        assert await client.eval("return redis.call('GET', KEYS[1])", 1, "k3") == b"3"
    finally:
        await client.aclose()
