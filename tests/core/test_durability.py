"""Durability: votes survive kill -9 of an AOF Redis; a volatile Redis is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from bot.core import StorageNotDurable, Study, StudyState, Winner
from contract.modelsfile import ModelsFile
from devstack.redis_servers import RedisServer
from tests.core.helpers import AUDIO, SECRET, Clock, result_for


def _study(client: aioredis.Redis, models: ModelsFile, data_dir: Path, clock: Clock) -> Study:
    return Study(
        client,
        secret=SECRET,
        data_dir=data_dir,
        known_models=models,
        rng=np.random.default_rng(0),
        clock=clock,
        initial_state=StudyState.OPEN,
    )


async def test_votes_survive_kill_9(
    private_redis: RedisServer, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> None:
    client = aioredis.Redis.from_url(private_redis.url)
    study = _study(client, models_file, data_dir, clock)
    await study.check_persistence(allow_volatile=False)
    await study.set_limits("mod", min_seconds_between=0, daily_quota=100)
    votes = {}
    for user in range(1, 21):
        await study.consent(user, "1")
        battle = await study.start_battle(user, AUDIO, 1.0, "ogg")
        await study.record_reply(result_for(battle, "a"))
        await study.record_reply(result_for(battle, "b"))
        winner = list(Winner)[user % 4]
        await study.vote(user, battle.battle_id, winner)
        votes[battle.battle_id] = winner
    await client.aclose()

    private_redis.kill()  # SIGKILL: no shutdown save
    private_redis.start()

    client = aioredis.Redis.from_url(private_redis.url)
    try:
        study = _study(client, models_file, data_dir, clock)
        got = {b.battle_id: b.winner async for b in study.iter_battles()}
        assert got == votes
        summary = await study.summary()
        assert summary["battles_by_status"] == {"voted": 20}
    finally:
        await client.aclose()


async def test_volatile_redis_is_refused_unless_allowed(
    redis_server_factory: Callable[..., RedisServer],
    models_file: ModelsFile,
    data_dir: Path,
    clock: Clock,
) -> None:
    server = redis_server_factory(aof=False)
    client = aioredis.Redis.from_url(server.url)
    try:
        study = _study(client, models_file, data_dir, clock)
        with pytest.raises(StorageNotDurable, match="appendonly") as info:
            await study.check_persistence(allow_volatile=False)
        assert "PARLEY_ALLOW_VOLATILE_REDIS" in str(info.value)
        problems = await study.check_persistence(allow_volatile=True)
        assert any("appendonly" in p for p in problems)
        await client.config_set("appendonly", "yes")
        await client.config_set("appendfsync", "no")
        with pytest.raises(StorageNotDurable, match="appendfsync"):
            await study.check_persistence(allow_volatile=False)
        await client.config_set("appendfsync", "everysec")
        await client.config_set("maxmemory-policy", "allkeys-lru")
        with pytest.raises(StorageNotDurable, match="noeviction"):
            await study.check_persistence(allow_volatile=False)
        await client.config_set("maxmemory-policy", "noeviction")
        assert await study.check_persistence(allow_volatile=False) == []
    finally:
        await client.aclose()
        # Turning AOF on at runtime starts a rewrite that makes a polite shutdown slow.
        server.kill()
