"""Found by the load benchmark: the bot's results listener must not show battles one at a time.

A final render waits for its message's edit turn (up to EDIT_INTERVAL_S after the last partial
reply was shown). Handled one after another, those waits added up: at 10 voice messages a
second the bot fell minutes behind, and the sweeper took the finished-but-unshown jobs for
abandoned ones. Here every final render blocks until all of them have started, so the test
only passes when the listener handles a read's results together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from bot.core import Study, StudyState, connect
from bot.discord_app.results import RESULTS_GROUP, ResultListener
from contract.keys import RESULTS_STREAM
from contract.modelsfile import load_models_file
from contract.protocol import ResultMessage
from contract.records import Battle
from devstack.redis_servers import RedisServer

pytestmark = pytest.mark.reliability

BATTLES = 6


class BarrierEditor:
    """An editor whose final render returns only once every battle's final render began."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.started: list[str] = []
        self.all_started = asyncio.Event()

    def progress(self, battle_id: str, position: int | None, *, buttons: bool = False) -> None:
        del battle_id, position, buttons  # only the final render matters here

    async def final(self, battle: Battle) -> None:
        self.started.append(battle.battle_id)
        if len(self.started) >= self.expected:
            self.all_started.set()
        await self.all_started.wait()


@pytest_asyncio.fixture
async def redis_client(
    redis_server_factory: Callable[..., RedisServer],
) -> AsyncIterator[aioredis.Redis]:
    # A private server: no other process's consumer of the `bot` group can take the results.
    client = connect(redis_server_factory(aof=False).url)
    yield client
    await client.aclose()


@pytest.mark.asyncio
async def test_results_of_one_read_are_shown_together(
    redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        '[models.m1]\nbackend = "openai_compatible"\n[models.m2]\nbackend = "openai_compatible"\n'
    )
    study = Study(
        redis_client,
        secret=b"0123456789abcdef0123",
        data_dir=tmp_path,
        known_models=load_models_file(models),
        rng=np.random.default_rng(11),
        initial_state=StudyState.OPEN,
    )
    battle_ids = []
    for person in range(1, BATTLES + 1):
        await study.consent(person, "1")
        battle = await study.start_battle(
            person, b"OggS bytes", 2.0, "ogg", ui={"channel_id": "1", "message_id": str(person)}
        )
        battle_ids.append(battle.battle_id)
        for side, model in (("a", battle.model_a), ("b", battle.model_b)):
            reply = ResultMessage(battle.battle_id, side, model, "hi", None, {"total": 1.0})  # type: ignore[arg-type]
            await redis_client.xadd(RESULTS_STREAM, reply.to_fields())  # type: ignore[arg-type]
    editor = BarrierEditor(BATTLES)
    listener = ResultListener(redis_client, study, editor)  # type: ignore[arg-type]
    reading = asyncio.create_task(listener.run_results())
    try:
        # One at a time, the first final render would wait for ever for the others.
        await asyncio.wait_for(editor.all_started.wait(), timeout=10)
        for _ in range(200):
            pending = await redis_client.xpending(RESULTS_STREAM, RESULTS_GROUP)
            if pending["pending"] == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    assert sorted(editor.started) == sorted(battle_ids)
    assert pending["pending"] == 0
