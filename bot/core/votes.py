"""Votes (with the reveal, in one write) and participants' comments on their battles."""

from __future__ import annotations

import dataclasses
import json
import unicodedata

from bot.core.codec import battle_from_hash, decode_hash
from bot.core.context import StudyContext, utc_day
from bot.core.quality import FAST_VOTE, is_fast_vote, vote_needs_seconds
from bot.core.refusals import refused
from bot.core.scripts import AddComment, Vote
from bot.core.study_config import ConfigStore
from contract import keys
from contract.events import Commented, Voted
from contract.records import Battle, Winner

MAX_COMMENTS_PER_BATTLE = 10
# Characters that show nothing: format (zero-width space/joiner, bidi marks), control,
# separators. `str.strip()` keeps most of them, so a comment of only these would be saved.
_INVISIBLE = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})


def has_visible_text(text: str) -> bool:
    return any(unicodedata.category(ch) not in _INVISIBLE for ch in text)


class Votes:
    def __init__(self, ctx: StudyContext, config: ConfigStore) -> None:
        self._ctx = ctx
        self._config = config

    async def vote(self, discord_id: int, battle_id: str, winner: Winner) -> tuple[Battle, int]:
        """Record the vote and the reveal in one write. Returns (battle, battles left today)."""
        at = self._ctx.clock()
        # Judged on the battle as stored: both replies and `answered_at` never change once the
        # battle is answered, and the script refuses a vote on a battle that is not.
        flags: tuple[str, ...] = ()
        current = await self._ctx.redis.hgetall(keys.battle(battle_id))
        if current:
            battle = battle_from_hash(decode_hash(current))
            needed = vote_needs_seconds(battle.replies, (await self._config.config()).limits)
            if (
                needed is not None
                and battle.answered_at is not None
                and is_fast_vote(at - battle.answered_at, needed)
                and FAST_VOTE not in battle.flags
            ):
                flags = (FAST_VOTE,)
        voted = Voted(
            battle_id=battle_id,
            participant=self._ctx.pseudonym(discord_id),
            winner=Winner(winner),
            at=at,
            flags=flags,
        )
        day, _ = utc_day(voted.at)
        outcome = await self._ctx.scripts.run(Vote(voted=voted, day=day))
        if outcome.code != "ok":
            raise refused(outcome.code)
        return battle_from_hash(outcome.record), int(outcome.detail)

    async def comment(self, discord_id: int, battle_id: str, text: str) -> Battle:
        if not isinstance(text, str):
            raise ValueError(f"comment must be a string, got {type(text).__name__}")
        text = text.strip()
        if not has_visible_text(text):
            raise refused("empty_comment")
        limit = (await self._config.config()).limits.comment_max_chars
        if len(text) > limit:
            raise refused("comment_too_long", limit=limit)
        commented = Commented(
            battle_id=battle_id,
            participant=self._ctx.pseudonym(discord_id),
            text=text,
            at=self._ctx.clock(),
        )
        comment_json = json.dumps(dataclasses.asdict(commented.comment()), ensure_ascii=False)
        outcome = await self._ctx.scripts.run(
            AddComment(
                commented=commented,
                comment_json=comment_json,
                max_comments=MAX_COMMENTS_PER_BATTLE,
            )
        )
        if outcome.code != "ok":
            raise refused(outcome.code, limit=MAX_COMMENTS_PER_BATTLE)
        return battle_from_hash(outcome.record)
