"""Starting battles and recording replies against a real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.core import BattleStatus, Refused, Strategy, StudyState
from bot.core.study import Study
from contract import keys
from contract.keys import AUDIO_TTL_S, audio_key
from tests.core.helpers import AUDIO, T0, Clock, result_for

MIDNIGHT = T0 + 12 * 3600  # the UTC day of T0 ends here


async def test_start_battle_records_everything(
    study: Study, clock: Clock, data_dir: Path, redis_client: aioredis.Redis
) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 3.5, "ogg", ui={"thread": 55})
    assert len(battle.battle_id) == 16
    assert int(battle.battle_id, 16) >= 0
    assert battle.model_a != battle.model_b
    assert {battle.model_a, battle.model_b} <= {"alpha", "beta", "gamma", "delta"}
    assert battle.status is BattleStatus.QUEUED
    assert battle.participant == study.pseudonym(1)
    assert battle.audio_ref == f"audio/{battle.battle_id}.ogg"
    assert (data_dir / battle.audio_ref).read_bytes() == AUDIO
    assert list((data_dir / "audio").iterdir()) == [data_dir / battle.audio_ref]
    assert await redis_client.get(audio_key(battle.battle_id)) == AUDIO
    ttl = await redis_client.ttl(audio_key(battle.battle_id))
    assert AUDIO_TTL_S - 5 < ttl <= AUDIO_TTL_S
    assert battle.ui == {"thread": 55}
    assert await study.battle(battle.battle_id) == battle
    assert await study.open_battles() == [battle]
    assert await study.remaining_today(1) == 19


async def test_battle_ids_are_random_not_model_derived(study: Study, clock: Clock) -> None:
    await study.consent(1, "1")
    await study.set_limits("mod", min_seconds_between=0)
    ids = set()
    for _ in range(5):
        battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
        assert battle.model_a not in battle.battle_id
        ids.add(battle.battle_id)
    assert len(ids) == 5


async def test_eligibility_needs_consent(study: Study) -> None:
    for call in (study.check_eligibility(3), study.start_battle(3, AUDIO, 1.0, "ogg")):
        with pytest.raises(Refused) as info:
            await call
        assert info.value.code == "no_consent"


async def test_rate_limit_refuses_with_retry_at(study: Study, clock: Clock) -> None:
    await study.consent(1, "1")
    await study.start_battle(1, AUDIO, 1.0, "ogg")
    clock.advance(5)
    with pytest.raises(Refused) as info:
        await study.check_eligibility(1)
    assert info.value.code == "rate_limited"
    assert info.value.retry_at == pytest.approx(T0 + 20)
    assert "wait" in info.value.message
    with pytest.raises(Refused):
        await study.start_battle(1, AUDIO, 1.0, "ogg")
    clock.advance(15)
    await study.check_eligibility(1)
    await study.start_battle(1, AUDIO, 1.0, "ogg")


async def test_daily_quota_refuses_until_utc_midnight(study: Study, clock: Clock) -> None:
    await study.consent(1, "1")
    await study.set_limits("mod", daily_quota=3, min_seconds_between=0)
    for left in (2, 1, 0):
        await study.start_battle(1, AUDIO, 1.0, "ogg")
        assert await study.remaining_today(1) == left
    with pytest.raises(Refused) as info:
        await study.start_battle(1, AUDIO, 1.0, "ogg")
    assert (info.value.code, info.value.retry_at) == ("daily_quota", MIDNIGHT)
    clock.now = MIDNIGHT + 1
    assert await study.remaining_today(1) == 3
    await study.start_battle(1, AUDIO, 1.0, "ogg")


async def test_two_messages_at_once_do_not_both_pass_the_rate_limit(
    study: Study, data_dir: Path
) -> None:
    await study.consent(1, "1")
    results = await asyncio.gather(
        *(study.start_battle(1, AUDIO, 1.0, "ogg") for _ in range(5)), return_exceptions=True
    )
    started = [r for r in results if not isinstance(r, BaseException)]
    refusals = [r for r in results if isinstance(r, Refused)]
    assert len(started) == 1
    assert len(refusals) == 4
    assert {r.code for r in refusals} == {"rate_limited"}
    # The refused attempts leave no audio behind.
    assert [p.name for p in (data_dir / "audio").iterdir()] == [f"{started[0].battle_id}.ogg"]


@pytest.mark.parametrize("state", [StudyState.PAUSED, StudyState.CLOSED])
async def test_paused_or_closed_refuses_new_battles_but_takes_votes_and_comments(
    study: Study, clock: Clock, state: StudyState
) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    await study.set_state(state, by="mod")
    clock.advance(60)
    with pytest.raises(Refused) as info:
        await study.check_eligibility(1)
    assert info.value.code == state.value
    with pytest.raises(Refused):
        await study.start_battle(1, AUDIO, 1.0, "ogg")
    await study.record_reply(result_for(battle, "a"))
    await study.record_reply(result_for(battle, "b"))
    voted, _ = await study.vote(1, battle.battle_id, "tie")
    assert voted.status is BattleStatus.VOTED
    commented = await study.comment(1, battle.battle_id, "both fine")
    assert [c.text for c in commented.comments] == ["both fine"]


async def test_roster_changes_and_needs_two_models(study: Study, clock: Clock) -> None:
    await study.consent(1, "1")
    with pytest.raises(Refused) as info:
        await study.set_roster(["alpha", "nope"], by="mod")
    assert info.value.code == "unknown_model"
    assert "nope" in info.value.message
    assert "alpha" in info.value.message
    # One model (or none) cannot make a battle: refused with the reason, roster unchanged.
    for small in (["beta"], ["beta", "beta"], []):
        with pytest.raises(Refused) as info:
            await study.set_roster(small, by="mod")
        assert info.value.code == "roster_invalid"
        assert "needs two models" in info.value.message
    assert len((await study.config()).roster) == 4
    # A stored roster that shrank below two (an older store) still refuses battles politely.
    await study.redis.delete(keys.ROSTER)
    await study.redis.sadd(keys.ROSTER, "beta")
    with pytest.raises(Refused) as info:
        await study.check_eligibility(1)
    assert info.value.code == "roster_too_small"
    with pytest.raises(Refused) as info:
        await study.set_state(StudyState.OPEN, by="mod")
    assert "`beta`" in info.value.message
    await study.set_roster(["gamma", "beta"], by="mod")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    assert {battle.model_a, battle.model_b} == {"beta", "gamma"}


async def test_audio_limits(study: Study) -> None:
    await study.consent(1, "1")
    await study.set_limits("mod", audio_max_seconds=10.0, audio_max_bytes=1_000)
    with pytest.raises(Refused) as info:
        await study.start_battle(1, b"x" * 50, 11.0, "ogg")
    assert info.value.code == "audio_too_long"
    with pytest.raises(Refused) as info:
        await study.start_battle(1, b"x" * 1_001, 5.0, "ogg")
    assert info.value.code == "audio_too_large"
    with pytest.raises(ValueError, match="audio format"):
        await study.start_battle(1, b"x", 1.0, "../../etc/passwd")


async def test_limits_are_validated(study: Study) -> None:
    forged = (
        {"daily_quota": 10**12},
        {"audio_max_seconds": 0.0},
        {"audio_max_seconds": 86_400.0},
        {"audio_max_bytes": 10**10},
        {"comment_max_chars": 0},
        {"min_seconds_between": float("inf")},
        {"min_seconds_between": float("nan")},
        {"pair_target": 0},
    )
    for bad in (
        {"daily_quota": -1},
        {"daily_quota": 2.5},
        {"nonsense": 3},
        {"pair_target": True},
        *forged,
    ):
        with pytest.raises(Refused) as info:
            await study.set_limits("mod", **bad)
        assert info.value.code == "invalid_limit"
    config = await study.set_limits("mod", daily_quota=5, min_seconds_between=2.5)
    assert (config.limits.daily_quota, config.limits.min_seconds_between) == (5, 2.5)


async def test_forged_strategy_and_state_are_refused_politely(study: Study) -> None:
    for call in (
        study.set_strategy("thompson", by="mod"),  # type: ignore[arg-type]
        study.set_state("half-open", by="mod"),  # type: ignore[arg-type]
    ):
        with pytest.raises(Refused) as info:
            await call
        assert info.value.code == "invalid_value"
        assert "'thompson'" in info.value.message or "'half-open'" in info.value.message


async def test_balanced_strategy_fills_pairs_evenly(study: Study, clock: Clock) -> None:
    await study.set_strategy(Strategy.BALANCED, by="mod")
    await study.set_limits("mod", min_seconds_between=0, daily_quota=100, pair_target=4)
    await study.consent(1, "1")
    pairs = Counter()
    sides = Counter()
    for _ in range(24):
        battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
        assert battle.strategy is Strategy.BALANCED
        pairs[frozenset((battle.model_a, battle.model_b))] += 1
        sides[battle.model_a] += 1
    assert sorted(pairs.values()) == [4] * 6
    assert len(sides) == 4  # every model shown as A some time
    summary = await study.summary()
    assert set(summary["battles_per_pair"].values()) == {4}


async def test_record_reply_is_idempotent_and_answers(study: Study, clock: Clock) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    clock.advance(3)
    b, changed = await study.record_reply(result_for(battle, "a"))
    assert changed
    assert b.status is BattleStatus.QUEUED
    assert set(b.replies) == {"a"}
    again, changed = await study.record_reply(result_for(battle, "a", reply="other"))
    assert not changed
    assert again == b
    clock.advance(1)
    b, changed = await study.record_reply(result_for(battle, "b"))
    assert changed
    assert b.status is BattleStatus.ANSWERED
    assert b.answered_at == T0 + 4
    assert b.replies["b"].text == "hi on side b"
    assert b.replies["a"].transcript == "what is the weather"
    assert b.replies["a"].timings == {"total": 1.5, "first_token": 0.4}
    _, changed = await study.record_reply(result_for(battle, "b"))
    assert not changed


async def test_record_reply_checks_the_model(study: Study) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    wrong = result_for(battle, "a")
    wrong = type(wrong)(**{**wrong.__dict__, "model_id": battle.model_b})
    with pytest.raises(ValueError, match="names model"):
        await study.record_reply(wrong)


async def test_failed_reply_fails_the_battle_and_gives_the_quota_back(
    study: Study, clock: Clock
) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    assert await study.remaining_today(1) == 19
    await study.record_reply(result_for(battle, "a"))
    b, changed = await study.record_reply(result_for(battle, "b", error="CUDA out of memory"))
    assert changed
    assert b.status is BattleStatus.FAILED
    assert b.flags == ("error_b:permanent",)
    assert b.replies["b"].error == "CUDA out of memory"
    assert await study.remaining_today(1) == 20
    assert await study.open_battles() == []
    with pytest.raises(Refused) as info:
        await study.vote(1, battle.battle_id, "model_a")
    assert info.value.code == "failed"
    summary = await study.summary()
    assert summary["battles_by_status"] == {"failed": 1}
    assert summary["battles_per_pair"] == {}


async def test_reply_for_unknown_battle(study: Study) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    ghost = type(battle)(**{**battle.__dict__, "battle_id": "0" * 16})
    with pytest.raises(Refused) as info:
        await study.record_reply(result_for(ghost, "a"))
    assert info.value.code == "no_such_battle"
    with pytest.raises(Refused):
        await study.set_ui("0" * 16, message=1)
    assert await study.battle("0" * 16) is None


async def test_set_ui_merges(study: Study) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg", ui={"thread": 1})
    await study.set_ui(battle.battle_id, message=2, extra={"k": [1, 2]})
    got = await study.battle(battle.battle_id)
    assert got is not None
    assert got.ui == {"thread": 1, "message": 2, "extra": {"k": [1, 2]}}


async def test_events_record_the_lifecycle(
    study: Study, clock: Clock, redis_client: aioredis.Redis
) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    await study.record_reply(result_for(battle, "a"))
    await study.record_reply(result_for(battle, "b"))
    await study.record_reply(result_for(battle, "b"))  # duplicate delivery: no event
    await study.vote(1, battle.battle_id, "model_b")
    await study.comment(1, battle.battle_id, "nice")
    types = [f[b"type"].decode() for _, f in await redis_client.xrange(keys.EVENTS)]
    assert types == ["consent", "config", "battle_started", "reply", "reply", "vote", "comment"]


async def test_a_reply_naming_a_model_is_stored_masked_and_flagged(
    study: Study, clock: Clock, redis_client: aioredis.Redis
) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    other = "alpha" if battle.model_a != "alpha" else "beta"
    named = dataclasses.replace(
        result_for(battle, "a"), reply=f"I am {battle.model_a.upper()}, unlike {other}."
    )
    b, _ = await study.record_reply(named)
    assert b.replies["a"].text == "I am [name hidden], unlike [name hidden]."
    assert b.flags == ("identity_leak",)
    b, _ = await study.record_reply(result_for(battle, "b"))
    assert b.replies["b"].text == "hi on side b"  # a clean reply is kept as written
    assert b.flags == ("identity_leak",)
    assert b.status is BattleStatus.ANSWERED
    # The stored event holds the masked text too, and which models were named.
    events = [f for _, f in await redis_client.xrange(keys.EVENTS) if f[b"type"] == b"reply"]
    first = json.loads(events[0][b"data"])
    assert first["reply"] == b.replies["a"].text
    assert first["named"] == sorted({battle.model_a, other})
    assert battle.model_a.upper().encode() not in events[0][b"data"]
