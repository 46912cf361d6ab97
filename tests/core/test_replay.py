"""The event stream is enough to rebuild every battle and participant record."""

from __future__ import annotations

import dataclasses

import redis.asyncio as aioredis

from bot.core import Demographics, Winner
from bot.core.replay import decode_events, replay_battles, replay_participants
from bot.core.study import Study
from contract import keys
from tests.core.helpers import AUDIO, Clock, answered_battle, result_for


async def test_events_rebuild_the_store(
    study: Study, clock: Clock, redis_client: aioredis.Redis
) -> None:
    clock.now += 0.1234567  # times with more digits than stored, to test the rounding
    voted = await answered_battle(study, clock, user=1)
    await study.comment(1, voted.battle_id, "first")
    clock.advance(3.3333333)
    await study.vote(1, voted.battle_id, Winner.TIE)
    await study.comment(1, voted.battle_id, "after")
    await study.set_demographics(1, Demographics(age_band="18-24"))
    await study.set_limits("mod", min_seconds_between=0)
    failed = await study.start_battle(1, AUDIO, 2.0, "ogg")
    await study.record_reply(result_for(failed, "b", error="boom"))
    await study.record_reply(result_for(failed, "a"))
    queued = await study.start_battle(1, AUDIO, 2.0, "wav")
    await study.record_reply(result_for(queued, "a"))
    await answered_battle(study, clock, user=2)
    await study.withdraw(2)
    await study.consent(3, "1")
    await study.block(3, "spam", by="mod")
    await study.block(4, "never joined", by="mod")
    await study.unblock(4, by="mod")

    events = decode_events(await redis_client.xrange(keys.EVENTS))
    stored = {b.battle_id: dataclasses.replace(b, ui={}) async for b in study.iter_battles()}
    assert replay_battles(events) == stored
    assert len(stored) == 3

    people = replay_participants(events)
    for user in (1, 2, 3, 4):
        assert people[study.pseudonym(user)] == await study.participant(user)
