"""Vote, reveal and comment through the service."""

from __future__ import annotations

from bot.core import Study
from bot.service import StudyService
from bot.service.outcomes import (
    CommentForm,
    CommentSaved,
    CommentTooLong,
    EmptyComment,
    NoSuchBattle,
    NotYourBattle,
    Refusal,
    Reveal,
)
from contract.records import BattleStatus, Limits, Winner
from tests.core.helpers import Clock, answered_battle

NAMES = {"alpha": "Alpha", "beta": "Beta", "gamma": "Gamma", "delta": "Delta"}


async def test_vote_reveals_the_names_and_the_rounds_left(
    service: StudyService, study: Study, clock: Clock
) -> None:
    battle = await answered_battle(study, clock)
    clock.advance(30)
    reveal = await service.battles.vote(1001, battle.battle_id, Winner.MODEL_B)
    assert isinstance(reveal, Reveal)
    assert reveal.battle.status is BattleStatus.VOTED
    assert reveal.battle.winner is Winner.MODEL_B
    assert reveal.names == {"a": NAMES[battle.model_a], "b": NAMES[battle.model_b]}
    assert reveal.remaining == Limits().daily_quota - 1
    again = await service.battles.vote(1001, battle.battle_id, Winner.MODEL_A)
    assert isinstance(again, Refusal)
    assert again.code == "already_voted"
    # The repeat click shows the reveal of the vote that stands.
    assert await service.battles.reveal(1001, battle.battle_id) == reveal


async def test_reveal_only_of_ones_own_voted_battle(
    service: StudyService, study: Study, clock: Clock
) -> None:
    battle = await answered_battle(study, clock)
    assert await service.battles.reveal(1001, battle.battle_id) is None  # not voted yet
    clock.advance(30)
    await service.battles.vote(1001, battle.battle_id, Winner.TIE)
    assert await service.battles.reveal(2002, battle.battle_id) is None
    assert await service.battles.reveal(1001, "ffffffffffffffff") is None


async def test_vote_on_someone_elses_battle_is_refused(
    service: StudyService, study: Study, clock: Clock
) -> None:
    battle = await answered_battle(study, clock)
    refusal = await service.battles.vote(2002, battle.battle_id, Winner.MODEL_A)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "not_your_battle"


async def test_comment_form_and_comment(service: StudyService, study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock)
    bid = battle.battle_id
    assert await service.battles.open_comment(1001, "ffffffffffffffff") == NoSuchBattle(
        "ffffffffffffffff"
    )
    assert await service.battles.open_comment(2002, bid) == NotYourBattle(bid)
    form = await service.battles.open_comment(1001, bid)
    assert form == CommentForm(bid, Limits().comment_max_chars)
    comment = service.battles.comment
    assert await comment(1001, bid, "   ", max_chars=10) == EmptyComment()
    assert await comment(1001, bid, "x" * 11, max_chars=10) == CommentTooLong(11, 10)
    refusal = await comment(2002, bid, "mine", max_chars=10)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "not_your_battle"
    saved = await comment(1001, bid, "  B was clearer  ", max_chars=20)
    assert isinstance(saved, CommentSaved)
    stored = await study.battle(bid)
    assert stored is not None
    assert [c.text for c in stored.comments] == ["B was clearer"]
