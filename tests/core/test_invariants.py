"""Random sequences of study operations keep every derived count equal to the records.

Derived state (counts by status, per pair, votes per pair, the open set, daily counts) is
updated inside the same scripts as the records; a seeded random walk over the API checks that
no path lets them drift, and that the event stream still rebuilds the store.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import redis.asyncio as aioredis

from bot.core import Battle, BattleStatus, Refused, Winner
from bot.core.replay import decode_events, replay_battles
from bot.core.study import Study, utc_day
from contract import keys
from tests.core.helpers import AUDIO, Clock, result_for

USERS = range(1, 7)


async def _random_walk(study: Study, clock: Clock, rng: np.random.Generator, steps: int) -> None:
    await study.set_limits("mod", min_seconds_between=5, daily_quota=8)
    for user in USERS:
        await study.consent(user, "1")
    battles: list[Battle] = []
    for _ in range(steps):
        clock.advance(float(rng.uniform(0, 4)))
        op = rng.choice(["start", "start", "reply", "reply", "vote", "comment", "rare"])
        user = int(rng.choice(USERS))
        try:
            if op == "start":
                battles.append(await study.start_battle(user, AUDIO, 1.0, "ogg"))
            elif op == "reply" and battles:
                battle = battles[int(rng.integers(len(battles)))]
                error = "boom" if rng.random() < 0.15 else None
                await study.record_reply(
                    result_for(battle, str(rng.choice(["a", "b"])), error=error)
                )
            elif op == "vote" and battles:
                battle = battles[int(rng.integers(len(battles)))]
                owner = next(u for u in USERS if study.pseudonym(u) == battle.participant)
                voter = owner if rng.random() < 0.8 else user
                await study.vote(voter, battle.battle_id, Winner(rng.choice(list(Winner))))
            elif op == "comment" and battles:
                battle = battles[int(rng.integers(len(battles)))]
                await study.comment(user, battle.battle_id, "a remark")
            elif op == "rare":
                roll = rng.random()
                if roll < 0.2 and user >= 5:  # some leave; enough stay to reach every status
                    await study.withdraw(user)
                elif roll < 0.5:
                    await study.block(user, "test", by="mod")
                elif roll < 0.8:
                    await study.unblock(user, by="mod")
                else:
                    clock.advance(24 * 3600)  # a new UTC day
        except Refused:
            pass


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_derived_state_matches_the_records(
    study: Study, clock: Clock, redis_client: aioredis.Redis, seed: int
) -> None:
    await _random_walk(study, clock, np.random.default_rng(seed), steps=250)
    stored = [b async for b in study.iter_battles()]
    summary = await study.summary()

    assert summary["battles_by_status"] == dict(Counter(b.status.value for b in stored))

    def pair(b) -> str:
        return keys.pair_field(b.model_a, b.model_b)

    not_failed = Counter(pair(b) for b in stored if b.status is not BattleStatus.FAILED)
    assert summary["battles_per_pair"] == dict(sorted(not_failed.items()))
    voted = Counter(pair(b) for b in stored if b.status is BattleStatus.VOTED)
    assert summary["votes_per_pair"] == dict(sorted(voted.items()))
    open_ids = {
        b.battle_id for b in stored if b.status in (BattleStatus.QUEUED, BattleStatus.ANSWERED)
    }
    assert {b.battle_id for b in await study.open_battles()} == open_ids
    for b in stored:
        assert (b.winner is not None) == (b.status is BattleStatus.VOTED)
        assert (b.revealed_at is not None) == (b.status is BattleStatus.VOTED)

    today, _ = utc_day(clock.now)
    quota = (await study.config()).limits.daily_quota
    for user in USERS:
        p = study.pseudonym(user)
        used = sum(
            1
            for b in stored
            if b.participant == p
            and b.status is not BattleStatus.FAILED
            and utc_day(b.created_at)[0] == today
        )
        assert await study.remaining_today(user) == max(quota - used, 0)

    # The walk reached every status, so the checks above were not vacuous.
    assert set(summary["battles_by_status"]) == {"queued", "answered", "failed", "voted"}
    events = decode_events(await redis_client.xrange(keys.EVENTS))
    assert replay_battles(events) == {b.battle_id: dataclasses.replace(b, ui={}) for b in stored}
