"""Votes, reveals and comments against a real Redis, including concurrent clicks."""

from __future__ import annotations

import asyncio

import pytest

from bot.core import BattleStatus, Refused, Winner
from bot.core.quality import SPOKEN_SECONDS, vote_needs_seconds
from bot.core.study import Study
from contract import keys
from contract.records import Limits, Reply
from tests.core.helpers import AUDIO, T0, Clock, answered_battle, result_for


async def test_vote_records_winner_reveal_and_delay(study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock)
    clock.advance(7.25)
    voted, remaining = await study.vote(1001, battle.battle_id, Winner.BOTH_BAD)
    assert voted.status is BattleStatus.VOTED
    assert voted.winner is Winner.BOTH_BAD
    assert voted.voted_at == voted.revealed_at == T0 + 9.25
    assert voted.vote_delay_s == pytest.approx(7.25)
    assert remaining == 19
    assert await study.battle(battle.battle_id) == voted
    assert await study.open_battles() == []
    summary = await study.summary()
    pair = "|".join(sorted((battle.model_a, battle.model_b)))
    assert summary["votes_per_pair"] == {pair: 1}
    assert summary["per_model"][battle.model_a] == {"battles": 1, "votes": 1}
    assert summary["battles_by_status"] == {"voted": 1}


@pytest.mark.parametrize("winner", ["model_a", "model_b", "tie", "tie (bothbad)"])
async def test_every_winner_value(study: Study, clock: Clock, winner: str) -> None:
    battle = await answered_battle(study, clock)
    voted, _ = await study.vote(1001, battle.battle_id, winner)  # type: ignore[arg-type]
    assert voted.winner == winner


async def test_unknown_winner_fails_loudly(study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock)
    with pytest.raises(ValueError, match="bothgood"):
        await study.vote(1001, battle.battle_id, "bothgood")  # type: ignore[arg-type]


async def test_only_the_battles_own_participant_can_vote(study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock)
    await study.consent(2002, "1")
    with pytest.raises(Refused) as info:
        await study.vote(2002, battle.battle_id, Winner.MODEL_A)
    assert info.value.code == "not_your_battle"
    with pytest.raises(Refused) as info:
        await study.comment(2002, battle.battle_id, "hijack")
    assert info.value.code == "not_your_battle"
    assert (await study.battle(battle.battle_id)).status is BattleStatus.ANSWERED


async def test_second_vote_changes_nothing_and_says_so(study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock)
    first, _ = await study.vote(1001, battle.battle_id, Winner.MODEL_A)
    clock.advance(5)
    with pytest.raises(Refused) as info:
        await study.vote(1001, battle.battle_id, Winner.MODEL_B)
    assert info.value.code == "already_voted"
    assert "already voted" in info.value.message
    assert await study.battle(battle.battle_id) == first


async def test_concurrent_votes_exactly_one_wins(study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock)
    results = await asyncio.gather(
        study.vote(1001, battle.battle_id, Winner.MODEL_A),
        study.vote(1001, battle.battle_id, Winner.MODEL_B),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, tuple)]
    losses = [r for r in results if isinstance(r, Refused)]
    assert len(wins) == 1
    assert [r.code for r in losses] == ["already_voted"]
    stored = await study.battle(battle.battle_id)
    assert stored == wins[0][0]
    summary = await study.summary()
    assert sum(summary["votes_per_pair"].values()) == 1


async def test_no_vote_before_both_replies(study: Study, clock: Clock) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    with pytest.raises(Refused) as info:
        await study.vote(1, battle.battle_id, Winner.TIE)
    assert info.value.code == "not_ready"
    await study.record_reply(result_for(battle, "b"))
    with pytest.raises(Refused) as info:
        await study.vote(1, battle.battle_id, Winner.TIE)
    assert info.value.code == "not_ready"
    stored = await study.battle(battle.battle_id)
    assert stored.revealed_at is None
    assert stored.winner is None


async def test_vote_on_missing_battle(study: Study) -> None:
    await study.consent(1, "1")
    with pytest.raises(Refused) as info:
        await study.vote(1, "0123456789abcdef", Winner.TIE)
    assert info.value.code == "no_such_battle"


async def test_comments_before_and_after_the_vote_bounded(study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock)
    before = await study.comment(1001, battle.battle_id, "  A sounded robotic  ")
    assert [c.text for c in before.comments] == ["A sounded robotic"]
    clock.advance(1)
    await study.vote(1001, battle.battle_id, Winner.MODEL_B)
    after = await study.comment(1001, battle.battle_id, "B was right")
    assert [(c.text, c.at) for c in after.comments] == [
        ("A sounded robotic", T0 + 2),
        ("B was right", T0 + 3),
    ]
    assert after.winner is Winner.MODEL_B
    for text, code in (
        ("   ", "empty_comment"),
        ("\u200b\u200d\u2060\ufeff \u200b", "empty_comment"),  # zero-width only
        ("\u202e\u00a0\u3000", "empty_comment"),  # a bidi mark and wide spaces
        ("x" * 1001, "comment_too_long"),
    ):
        with pytest.raises(Refused) as info:
            await study.comment(1001, battle.battle_id, text)
        assert info.value.code == code
    with pytest.raises(Refused, match="at most 1000 characters"):
        await study.comment(1001, battle.battle_id, "x" * 1001)
    # Exactly the limit is allowed (mutation survivor: `>=` for `>`).
    at_limit = await study.comment(1001, battle.battle_id, "y" * 1000)
    assert at_limit.comments[-1].text == "y" * 1000
    with pytest.raises(ValueError, match="comment must be a string, got int"):
        await study.comment(1001, battle.battle_id, 42)  # type: ignore[arg-type]
    # Stored as UTF-8 JSON, not \u escapes (the export and `/mydata` read it as written).
    await study.comment(1001, battle.battle_id, "Très naturel ✓")
    raw = await study.redis.hget(keys.battle(battle.battle_id), "comment:4")
    assert "Très naturel ✓".encode() in raw
    for i in range(6):
        await study.comment(1001, battle.battle_id, f"more {i}")
    with pytest.raises(Refused) as info:
        await study.comment(1001, battle.battle_id, "one too many")
    assert info.value.code == "too_many_comments"
    # The refusal names the limit (mutation survivor: the limit left out of the message).
    assert "(10)" in str(info.value)
    assert len((await study.battle(battle.battle_id)).comments) == 10


async def test_comment_on_queued_battle(study: Study) -> None:
    await study.consent(1, "1")
    battle = await study.start_battle(1, AUDIO, 1.0, "ogg")
    commented = await study.comment(1, battle.battle_id, "waiting")
    assert commented.status is BattleStatus.QUEUED


async def test_a_vote_sooner_than_reading_is_flagged_fast(study: Study, clock: Clock) -> None:
    # "hi on side a" + "hi on side b": 24 characters, 0.48 s at 50 chars/s; the floor is 1 s.
    quick = await answered_battle(study, clock, user=1)
    clock.advance(0.5)
    voted, _ = await study.vote(1, quick.battle_id, Winner.MODEL_A)
    assert voted.flags == ("fast_vote",)
    clock.advance(30)
    slow = await answered_battle(study, clock, user=1)
    clock.advance(1.5)
    voted, _ = await study.vote(1, slow.battle_id, Winner.TIE)
    assert voted.flags == ()


async def test_fast_vote_thresholds_come_from_the_limits(study: Study, clock: Clock) -> None:
    await study.set_limits("mod", fast_vote_chars_per_second=1.0, fast_vote_floor_s=0.0)
    battle = await answered_battle(study, clock, user=1)
    clock.advance(20)  # 24 characters at 1 char/s need 24 s
    voted, _ = await study.vote(1, battle.battle_id, Winner.MODEL_B)
    assert voted.flags == ("fast_vote",)
    await study.set_limits("mod", fast_vote_chars_per_second=0)  # off
    clock.advance(30)
    battle = await answered_battle(study, clock, user=1)
    voted, _ = await study.vote(1, battle.battle_id, Winner.MODEL_B)
    assert voted.flags == ()


def test_spoken_replies_count_by_listening_time() -> None:
    spoken = {
        side: Reply(side, "m", "x" * 500, None, {SPOKEN_SECONDS: 10.0}, None, 0.0) for side in "ab"
    }
    assert vote_needs_seconds(spoken, Limits()) == 10.0  # half of 20 s, not 1000 chars / 50
    assert vote_needs_seconds(spoken, Limits(fast_vote_listen_share=0)) is None
    # A share above 1 (a Limits built past the core's range check) counts as the whole length.
    assert vote_needs_seconds(spoken, Limits(fast_vote_listen_share=1.5)) == 20.0
