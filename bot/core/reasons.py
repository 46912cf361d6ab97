"""Why a vote went the way it did: the loser's reason (a select menu after the vote) and the
participant's reason spoken as a voice message, which the study's ASR transcribes into a
comment (`source` "voice")."""

from __future__ import annotations

import dataclasses
import json

from bot.core.codec import as_text, battle_from_hash
from bot.core.context import StudyContext
from bot.core.refusals import refused
from bot.core.scripts import AddComment, AwaitReason, SetLossReason, TakeReason
from bot.core.study_config import ConfigStore
from bot.core.votes import MAX_COMMENTS_PER_BATTLE
from contract import keys
from contract.events import Commented, LossReasonGiven
from contract.records import LOSS_REASONS, Battle

# How long "Say why (voice)" waits for the voice message.
REASON_WAIT_S = 600


class Reasons:
    def __init__(self, ctx: StudyContext, config: ConfigStore) -> None:
        self._ctx = ctx
        self._config = config

    async def set_loss_reason(self, discord_id: int, battle_id: str, reason: str) -> Battle:
        if reason not in LOSS_REASONS:
            raise refused("unknown_reason", reason=reason, known=", ".join(LOSS_REASONS))
        given = LossReasonGiven(
            battle_id=battle_id,
            participant=self._ctx.pseudonym(discord_id),
            reason=reason,
            at=self._ctx.clock(),
        )
        outcome = await self._ctx.scripts.run(SetLossReason(given=given))
        if outcome.code != "ok":
            raise refused(outcome.code)
        return battle_from_hash(outcome.record)

    async def await_voice_reason(self, discord_id: int, battle_id: str, place: str) -> None:
        """The participant's next voice message in `place` (within REASON_WAIT_S) is the
        reason for their vote on this battle."""
        if self._ctx.known_models.asr_model is None:
            raise refused("no_asr")
        p = self._ctx.pseudonym(discord_id)
        code = await self._ctx.scripts.run(
            AwaitReason(
                participant=p,
                battle_id=battle_id,
                value=f"{battle_id}|{place}",
                ttl_s=REASON_WAIT_S,
            )
        )
        if code != "ok":
            raise refused(code)

    async def awaited_reason(self, discord_id: int, place: str) -> str | None:
        """The battle whose voice reason a message in `place` would be, if one is awaited."""
        raw = await self._ctx.redis.get(keys.reason_pending(self._ctx.pseudonym(discord_id)))
        if raw is None:
            return None
        battle_id, _, where = as_text(raw).partition("|")
        return battle_id if where == str(place) else None

    async def take_voice_reason(
        self, discord_id: int, battle_id: str, place: str, audio: bytes
    ) -> None:
        """Hold the reason's bytes (under `keys.reason_audio_key`) for the ASR job; never on
        disk, deleted once transcribed."""
        code = await self._ctx.scripts.run(
            TakeReason(
                participant=self._ctx.pseudonym(discord_id),
                battle_id=battle_id,
                value=f"{battle_id}|{place}",
                audio=bytes(audio),
            )
        )
        if code == "expired":
            raise refused("reason_expired")
        if code != "ok":
            raise refused(code)

    async def record_voice_reason(self, battle_id: str, text: str) -> Battle | None:
        """The ASR's text of a voice reason, kept as a comment (source "voice"); None when the
        battle is gone. The audio goes either way."""
        await self._ctx.redis.delete(keys.reason_audio_key(battle_id))
        participant = await self._ctx.redis.hget(keys.battle(battle_id), "participant")
        if participant is None:
            return None
        limit = (await self._config.config()).limits.comment_max_chars
        commented = Commented(
            battle_id=battle_id,
            participant=as_text(participant),
            text=text.strip()[:limit] or "(silence)",
            at=self._ctx.clock(),
            source="voice",
        )
        comment_json = json.dumps(dataclasses.asdict(commented.comment()), ensure_ascii=False)
        outcome = await self._ctx.scripts.run(
            AddComment(
                commented=commented,
                comment_json=comment_json,
                max_comments=MAX_COMMENTS_PER_BATTLE,
            )
        )
        if outcome.code == "no_such_battle":
            return None
        if outcome.code != "ok":
            raise refused(outcome.code, limit=MAX_COMMENTS_PER_BATTLE)
        return battle_from_hash(outcome.record)

    async def drop_voice_reason(self, battle_id: str) -> None:
        """The ASR failed: the reason's audio goes, nothing is kept."""
        await self._ctx.redis.delete(keys.reason_audio_key(battle_id))
