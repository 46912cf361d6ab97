"""Multi-turn battles and reasons against a real Redis: turns, histories, transcripts, stale
results, quotas, withdrawal, the loser's reason and the voice reason's comment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.core import BattleStatus, Refused, Winner
from bot.core.study import Study
from bot.export import battle_rows
from contract import keys
from contract.modelsfile import ModelsFile
from tests.core.helpers import AUDIO, Clock, make_study, result_for

PLACE = "4242"


async def answered(study: Study, clock: Clock, user: int = 1001) -> str:
    await study.consent(user, "1")
    battle = await study.start_battle(user, AUDIO, 3.0, "ogg", ui={"channel_id": PLACE})
    clock.advance(2)
    await study.record_reply(result_for(battle, "a", reply="Paris"))
    await study.record_reply(result_for(battle, "b", reply="Lyon"))
    return battle.battle_id


async def next_turn(study: Study, clock: Clock, battle_id: str, user: int = 1001) -> None:
    battle = await study.continue_battle(user, battle_id, AUDIO, 2.0, "ogg", ui={"message_id": "9"})
    clock.advance(1)
    for side, text in (("a", "Berlin"), ("b", "Bonn")):
        result = dataclasses.replace(result_for(battle, side, reply=text), turn=battle.turn)
        await study.record_reply(result)


async def test_a_second_turn_keeps_each_sides_own_conversation(
    study: Study, clock: Clock, data_dir: Path, redis_client: aioredis.Redis
) -> None:
    battle_id = await answered(study, clock)
    assert (await study.open_battle_in(1001, PLACE)).battle_id == battle_id
    assert await study.open_battle_in(1001, "other-place") is None
    battle = await study.continue_battle(1001, battle_id, AUDIO, 2.0, "ogg", ui={"message_id": "9"})
    assert battle.turn == 2
    assert battle.status is BattleStatus.QUEUED
    assert battle.replies == {}
    assert battle.ui["message_id"] == "9"
    assert await redis_client.get(keys.turn_audio_key(battle_id, 2)) == AUDIO
    assert (data_dir / battle.turns[1].audio_ref).read_bytes() == AUDIO
    # Each model hears its own replies only; the user's words come from the sides' ASR text.
    assert battle.history("a") == [
        {"role": "user", "content": "what is the weather"},
        {"role": "assistant", "content": result_for(battle, "a", reply="Paris").reply},
    ]
    assert battle.history("b")[1] == {
        "role": "assistant",
        "content": result_for(battle, "b", reply="Lyon").reply,
    }
    # The study ASR's transcript, where it ran, is what the histories quote.
    assert await study.record_transcript(battle_id, 1, "Capital of France?")
    battle = await study.battle(battle_id)
    assert battle.history("a")[0] == {"role": "user", "content": "Capital of France?"}
    # A first-turn result delivered again now is old news: it changes nothing.
    stale, changed = await study.record_reply(result_for(battle, "a", reply="late"))
    assert not changed
    assert stale.replies == {}
    clock.advance(1)
    for side, text in (("a", "Berlin"), ("b", "Bonn")):
        result = dataclasses.replace(result_for(battle, side, reply=text), turn=2)
        battle, _ = await study.record_reply(result)
    assert battle.status is BattleStatus.ANSWERED
    voted, remaining = await study.vote(1001, battle_id, Winner.MODEL_A)
    assert remaining == 19  # quotas count battles, not turns
    assert [m["content"] for m in voted.conversation("b")] == [
        "Capital of France?",
        result_for(battle, "b", reply="Lyon").reply,
        "what is the weather",
        result_for(battle, "b", reply="Bonn").reply,
    ]
    row = (await battle_rows(study))[0]
    assert row["turn"] == 2
    assert row["conversation_a"].count('"role": "assistant"') == 2
    assert row["latencies_a"] == "[1.5, 1.5]"


async def test_turn_rules(study: Study, clock: Clock) -> None:
    battle_id = await answered(study, clock)
    await study.set_limits("mod", max_turns=2)
    battle = await study.continue_battle(1001, battle_id, AUDIO, 2.0, "ogg")
    with pytest.raises(Refused) as info:  # turn 2 is still being answered
        await study.continue_battle(1001, battle_id, AUDIO, 2.0, "ogg")
    assert info.value.code == "not_ready"
    for side in ("a", "b"):
        await study.record_reply(dataclasses.replace(result_for(battle, side), turn=2))
    with pytest.raises(Refused) as info:
        await study.continue_battle(1001, battle_id, AUDIO, 2.0, "ogg")
    assert info.value.code == "turn_limit"
    assert "2 turns" in info.value.message
    await study.consent(2002, "1")
    with pytest.raises(Refused) as info:
        await study.continue_battle(2002, battle_id, AUDIO, 2.0, "ogg")
    assert info.value.code == "not_your_battle"
    await study.vote(1001, battle_id, Winner.TIE)
    assert await study.open_battle_in(1001, PLACE) is None
    with pytest.raises(Refused) as info:
        await study.continue_battle(1001, battle_id, AUDIO, 2.0, "ogg")
    assert info.value.code == "already_voted"


async def test_withdrawal_deletes_every_turn(
    asr_study: Study, clock: Clock, data_dir: Path, redis_client: aioredis.Redis
) -> None:
    study = asr_study
    battle_id = await answered(study, clock)
    await next_turn(study, clock, battle_id)
    await study.record_transcript(battle_id, 2, "und Deutschland?")
    await study.vote(1001, battle_id, Winner.MODEL_B)
    await study.await_voice_reason(1001, battle_id, PLACE)
    await study.take_voice_reason(1001, battle_id, PLACE, AUDIO)
    await study.await_voice_reason(1001, battle_id, PLACE)
    await study.withdraw(1001)
    assert await redis_client.get(keys.reason_audio_key(battle_id)) is None
    assert await study.awaited_reason(1001, PLACE) is None
    assert await redis_client.get(keys.turn_audio_key(battle_id, 2)) is None
    assert await redis_client.get(keys.audio_key(battle_id)) is None
    assert list((data_dir / "audio").iterdir()) == []
    assert await study.battle(battle_id) is None


async def test_the_losers_reason(study: Study, clock: Clock) -> None:
    battle_id = await answered(study, clock)
    with pytest.raises(Refused) as info:
        await study.set_loss_reason(1001, battle_id, "content")
    assert info.value.code == "not_voted"
    await study.vote(1001, battle_id, Winner.MODEL_A)
    with pytest.raises(Refused) as info:
        await study.set_loss_reason(1001, battle_id, "it was purple")
    assert info.value.code == "unknown_reason"
    battle = await study.set_loss_reason(1001, battle_id, "too_slow")
    assert battle.loss_reason == "too_slow"
    assert (await battle_rows(study))[0]["loss_reason"] == "too_slow"


@pytest.fixture
def asr_study(
    redis_client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> Study:
    """A study whose models file names an ASR model (any id will do: nothing runs here)."""
    return make_study(
        redis_client, dataclasses.replace(models_file, asr_model="alpha"), data_dir, clock
    )


async def test_without_an_asr_voice_reasons_are_refused(study: Study, clock: Clock) -> None:
    battle_id = await answered(study, clock)
    await study.vote(1001, battle_id, Winner.MODEL_B)
    with pytest.raises(Refused) as info:
        await study.await_voice_reason(1001, battle_id, PLACE)
    assert info.value.code == "no_asr"


async def test_a_voice_reason_becomes_a_voice_comment(
    asr_study: Study, clock: Clock, redis_client: aioredis.Redis
) -> None:
    study = asr_study
    battle_id = await answered(study, clock)
    with pytest.raises(Refused) as info:
        await study.await_voice_reason(1001, battle_id, PLACE)
    assert info.value.code == "not_voted"
    await study.vote(1001, battle_id, Winner.MODEL_B)
    await study.await_voice_reason(1001, battle_id, PLACE)
    assert await study.awaited_reason(1001, "elsewhere") is None
    assert await study.awaited_reason(1001, PLACE) == battle_id
    await study.take_voice_reason(1001, battle_id, PLACE, AUDIO)
    assert await study.awaited_reason(1001, PLACE) is None  # taken once
    assert await redis_client.get(keys.reason_audio_key(battle_id)) == AUDIO
    battle = await study.record_voice_reason(battle_id, " A understood my accent. ")
    assert battle is not None
    assert battle.comments[-1].text == "A understood my accent."
    assert battle.comments[-1].source == "voice"
    assert await redis_client.get(keys.reason_audio_key(battle_id)) is None
    row = (await battle_rows(study))[0]
    assert row["voice_reason"] == "A understood my accent."
    with pytest.raises(Refused) as info:
        await study.take_voice_reason(1001, battle_id, PLACE, AUDIO)
    assert info.value.code == "reason_expired"
