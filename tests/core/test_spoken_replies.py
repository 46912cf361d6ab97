"""Spoken replies in the study core: the reply mode (config, battle, events, replay), the reply
audio's length in the record and export, and its deletion on withdrawal."""

from __future__ import annotations

import dataclasses

import pytest
import redis.asyncio as aioredis

from bot.core import Refused, Winner
from bot.core.replay import decode_events, replay_battles
from bot.core.study import Study
from bot.export import battle_row
from contract import keys
from contract.events import BattleStarted, ConfigChanged
from contract.records import ReplyMode
from tests.core.helpers import AUDIO, Clock, result_for

USER = 4242


def spoken(result, seconds: float):  # type: ignore[no-untyped-def]
    return dataclasses.replace(
        result,
        audio_key=keys.reply_audio_key(result.battle_id, result.side),
        audio_seconds=seconds,
        audio_format="ogg",
    )


async def spoken_battle(study: Study, client: aioredis.Redis, clock: Clock) -> str:
    await study.consent(USER, "1")
    await study.set_replies(ReplyMode.SPEECH, "mod")
    battle = await study.start_battle(USER, AUDIO, 2.0, "ogg")
    assert battle.reply_mode is ReplyMode.SPEECH
    for side, seconds in (("a", 3.25), ("b", 4.5)):
        await client.set(
            keys.reply_audio_key(battle.battle_id, side), b"OggS spoken " + side.encode()
        )
        await study.record_reply(spoken(result_for(battle, side), seconds))
    clock.advance(10)
    return battle.battle_id


async def test_reply_mode_is_config_then_fixed_per_battle(
    study: Study, redis_client: aioredis.Redis, clock: Clock
) -> None:
    assert (await study.config()).replies is ReplyMode.TEXT
    battle_id = await spoken_battle(study, redis_client, clock)
    assert (await study.config()).replies is ReplyMode.SPEECH
    await study.set_replies(ReplyMode.TEXT, "mod")
    battle = await study.battle(battle_id)
    assert battle is not None
    assert battle.reply_mode is ReplyMode.SPEECH  # a later change does not touch it
    assert battle.reply_audio_seconds("a") == 3.25
    assert battle.reply_audio_seconds("b") == 4.5
    assert battle.replies["a"].audio_format == "ogg"
    assert await study.reply_audio(battle_id) == {"a": b"OggS spoken a", "b": b"OggS spoken b"}

    # The event stream holds it all, and replays to the same battle.
    events = decode_events(await redis_client.xrange(keys.EVENTS))
    changes = [e.replies for e in events if isinstance(e, ConfigChanged) and e.replies]
    assert changes == [ReplyMode.SPEECH, ReplyMode.TEXT]
    started = [e for e in events if isinstance(e, BattleStarted)]
    assert started[0].reply_mode is ReplyMode.SPEECH
    assert replay_battles(events)[battle_id] == battle

    row = battle_row(
        {
            k.decode(): v.decode()
            for k, v in (await redis_client.hgetall(keys.battle(battle_id))).items()
        }
    )
    assert (row["reply_mode"], row["speech_seconds_a"], row["speech_seconds_b"]) == (
        "speech",
        3.25,
        4.5,
    )


async def test_a_text_battle_is_stored_as_before(
    study: Study, redis_client: aioredis.Redis, clock: Clock
) -> None:
    await study.consent(USER, "1")
    battle = await study.start_battle(USER, AUDIO, 2.0, "ogg")
    await study.record_reply(result_for(battle, "a"))
    raw = await redis_client.hgetall(keys.battle(battle.battle_id))
    assert b"reply_mode" not in raw
    assert b"audio_seconds" not in raw[b"reply_a"]
    row = battle_row({k.decode(): v.decode() for k, v in raw.items()})
    assert (row["reply_mode"], row["speech_seconds_a"]) == ("text", None)


async def test_unknown_reply_mode_is_refused_politely(study: Study) -> None:
    with pytest.raises(Refused) as caught:
        await study.set_replies("loud", "mod")  # type: ignore[arg-type]
    assert caught.value.code == "invalid_reply_mode"
    assert "text, speech, both" in caught.value.message


async def test_withdrawal_deletes_the_spoken_replies_and_any_that_come_later(
    study: Study, redis_client: aioredis.Redis, clock: Clock
) -> None:
    battle_id = await spoken_battle(study, redis_client, clock)
    await study.vote(USER, battle_id, Winner.MODEL_B)
    clock.advance(60)
    late = await study.start_battle(USER, AUDIO, 2.0, "ogg")
    await study.withdraw(USER)
    reply_keys = [keys.reply_audio_key(b, s) for b in (battle_id, late.battle_id) for s in "ab"]
    assert await redis_client.exists(*reply_keys) == 0
    # A worker finishing its spoken reply after the withdrawal: the bot drops the audio too.
    await redis_client.set(keys.reply_audio_key(late.battle_id, "a"), b"OggS late")
    with pytest.raises(Refused) as caught:
        await study.record_reply(spoken(result_for(late, "a"), 2.0))
    assert caught.value.code == "no_such_battle"
    assert await redis_client.exists(keys.reply_audio_key(late.battle_id, "a")) == 0
