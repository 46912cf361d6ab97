"""A participant's battle: the vote and its reveal, and the comment."""

from __future__ import annotations

from bot.core.reasons import REASON_WAIT_S
from bot.core.votes import has_visible_text
from bot.service.deps import Deps
from bot.service.outcomes import (
    AwaitingVoiceReason,
    CommentForm,
    CommentSaved,
    CommentTooLong,
    EmptyComment,
    LossReasonSaved,
    NoSuchBattle,
    NotYourBattle,
    Refusal,
    Reveal,
)
from contract.records import Battle, BattleStatus, Refused, Winner


class Battles:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def names(self, battle: Battle) -> dict[str, str]:
        """Display names by side: only ever shown once the battle is voted."""
        return {
            side: self.deps.display_name(model)
            for side, model in (("a", battle.model_a), ("b", battle.model_b))
        }

    async def vote(self, user_id: int, battle_id: str, winner: Winner) -> Reveal | Refusal:
        try:
            battle, remaining = await self.deps.study.vote(user_id, battle_id, winner)
        except Refused as refused:
            return Refusal.of(refused)
        return Reveal(battle, self.names(battle), remaining)

    async def reveal(self, user_id: int, battle_id: str) -> Reveal | None:
        """The reveal of the participant's own voted battle; None for any other battle.

        The bot can die after `vote` recorded a click and before the click's answer showed the
        reveal; a repeat click ("already voted") shows it through this.
        """
        study = self.deps.study
        battle = await study.battle(battle_id)
        if (
            battle is None
            or battle.status is not BattleStatus.VOTED
            or battle.participant != study.pseudonym(user_id)
        ):
            return None
        remaining = await study.remaining_today(user_id)
        return Reveal(battle, self.names(battle), remaining)

    async def open_comment(
        self, user_id: int, battle_id: str
    ) -> CommentForm | NoSuchBattle | NotYourBattle:
        study = self.deps.study
        battle = await study.battle(battle_id)
        if battle is None:
            return NoSuchBattle(battle_id)
        if battle.participant != study.pseudonym(user_id):
            return NotYourBattle(battle_id)
        limits = (await study.config()).limits
        return CommentForm(battle_id, limits.comment_max_chars)

    async def comment(
        self, user_id: int, battle_id: str, text: str, *, max_chars: int
    ) -> CommentSaved | EmptyComment | CommentTooLong | Refusal:
        """Save a comment of at most `max_chars` (the limit its form was opened with). The
        Discord client enforces these bounds; a raw interaction need not, so check again."""
        text = text.strip()
        if not has_visible_text(text):
            return EmptyComment()
        if len(text) > max_chars:
            return CommentTooLong(len(text), max_chars)
        try:
            battle = await self.deps.study.comment(user_id, battle_id, text)
        except Refused as refused:
            return Refusal.of(refused)
        return CommentSaved(battle)

    async def loss_reason(
        self, user_id: int, battle_id: str, reason: str
    ) -> LossReasonSaved | Refusal:
        """Why the loser lost (the select menu after the vote)."""
        try:
            battle = await self.deps.study.set_loss_reason(user_id, battle_id, reason)
        except Refused as refused:
            return Refusal.of(refused)
        return LossReasonSaved(battle, reason)

    async def await_voice_reason(
        self, user_id: int, battle_id: str, place: str
    ) -> AwaitingVoiceReason | Refusal:
        """ "Say why (voice)": the next voice message in `place` is this vote's reason."""
        try:
            await self.deps.study.await_voice_reason(user_id, battle_id, place)
        except Refused as refused:
            return Refusal.of(refused)
        return AwaitingVoiceReason(battle_id, place, REASON_WAIT_S // 60)
