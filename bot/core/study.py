"""`Study`: the study core's one entry point, a thin facade over its concerns.

Plain async Python over one `redis.asyncio.Redis` (decode_responses=False); never imports
discord. Each concern is its own module: participants.py (record, consent, demographics,
blocking), withdrawal.py (withdrawal, my_data), study_config.py (state, roster, strategy,
limits), battles.py (eligibility, start, replies, Discord refs, reading), votes.py (votes,
comments), summary.py. Every multi-key write is one Lua script (lua.py, called through the typed
wrappers of scripts.py), so rules are checked and state is written in one atomic step: two
clicks, two messages or two workers racing cannot both pass.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from bot.core import summary as summary_module
from bot.core.battles import Battles
from bot.core.context import StudyContext, utc_day
from bot.core.identity import IdentityGuard
from bot.core.participants import Participants
from bot.core.persistence import check_persistence
from bot.core.reading import iter_battles, iter_participants, read_outcomes
from bot.core.reasons import Reasons
from bot.core.study_config import ConfigStore
from bot.core.turns import Turns
from bot.core.votes import Votes
from bot.core.withdrawal import Withdrawal
from contract.modelsfile import ModelsFile
from contract.pairing import PairOutcome
from contract.protocol import ResultMessage
from contract.records import (
    Battle,
    Demographics,
    Participant,
    ReplyMode,
    Strategy,
    StudyConfig,
    StudyState,
    Winner,
)

__all__ = ["Study", "utc_day"]


class Study:
    """One study stored in Redis. See docs/ARCHITECTURE.md ("The study core API")."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        secret: bytes,
        data_dir: Path,
        known_models: ModelsFile,
        rng: np.random.Generator,
        clock: Callable[[], float] = time.time,
        initial_state: StudyState = StudyState.CLOSED,
    ) -> None:
        # `initial_state` is the state of a study's first config only (a study that exists keeps
        # its own): closed in production; test and benchmark stacks may start one open.
        self._ctx = StudyContext(
            redis=redis,
            secret=secret,
            data_dir=Path(data_dir),
            known_models=known_models,
            rng=rng,
            clock=clock,
        )
        self._participants = Participants(self._ctx)
        self._withdrawal = Withdrawal(self._ctx, self._participants)
        self._study_config = ConfigStore(self._ctx, initial_state)
        self._battles = Battles(self._ctx, self._study_config)
        self._votes = Votes(self._ctx, self._study_config)
        self._turns = Turns(self._ctx, self._study_config)
        self._reasons = Reasons(self._ctx, self._study_config)

    # Read-only: the concerns share these through one context.
    @property
    def redis(self) -> aioredis.Redis:
        return self._ctx.redis

    @property
    def secret(self) -> bytes:
        return self._ctx.secret

    @property
    def data_dir(self) -> Path:
        return self._ctx.data_dir

    @property
    def known_models(self) -> ModelsFile:
        return self._ctx.known_models

    @property
    def rng(self) -> np.random.Generator:
        return self._ctx.rng

    @property
    def clock(self) -> Callable[[], float]:
        return self._ctx.clock

    @property
    def guard(self) -> IdentityGuard:
        """The identity guard: the Discord layer masks streaming partial replies with it."""
        return self._ctx.guard

    async def check_persistence(self, *, allow_volatile: bool) -> list[str]:
        return await check_persistence(self.redis, allow_volatile=allow_volatile)

    def pseudonym(self, discord_id: int) -> str:
        return self._ctx.pseudonym(discord_id)

    # ---------------------------------------------------------------- participants

    async def participant(self, discord_id: int) -> Participant | None:
        return await self._participants.participant(discord_id)

    async def consent(self, discord_id: int, version: str) -> Participant:
        return await self._participants.consent(discord_id, version)

    async def set_demographics(self, discord_id: int, demographics: Demographics) -> Participant:
        return await self._participants.set_demographics(discord_id, demographics)

    async def block(self, discord_id: int, reason: str, by: str) -> Participant:
        return await self._participants.block(discord_id, reason, by)

    async def unblock(self, discord_id: int, by: str) -> Participant:
        return await self._participants.unblock(discord_id, by)

    async def withdraw(self, discord_id: int) -> list[str]:
        """Returns the RQ job ids of the deleted battles (see `Withdrawal.withdraw`)."""
        return await self._withdrawal.withdraw(discord_id)

    async def forget_battle(self, battle_id: str) -> int:
        return await self._withdrawal.forget_battle(battle_id)

    async def my_data(self, discord_id: int) -> dict[str, Any]:
        return await self._withdrawal.my_data(discord_id)

    # ---------------------------------------------------------------- study state

    async def config(self) -> StudyConfig:
        return await self._study_config.config()

    async def set_state(self, state: StudyState, by: str) -> StudyConfig:
        return await self._study_config.set_state(state, by)

    async def set_strategy(self, strategy: Strategy, by: str) -> StudyConfig:
        return await self._study_config.set_strategy(strategy, by)

    async def set_replies(self, mode: ReplyMode, by: str) -> StudyConfig:
        return await self._study_config.set_replies(mode, by)

    async def set_roster(self, roster: list[str], by: str) -> StudyConfig:
        return await self._study_config.set_roster(roster, by)

    async def set_limits(self, by: str, **fields: Any) -> StudyConfig:
        return await self._study_config.set_limits(by, **fields)

    # ---------------------------------------------------------------- battles

    async def check_eligibility(self, discord_id: int) -> None:
        await self._battles.check_eligibility(discord_id)

    async def remaining_today(self, discord_id: int) -> int:
        return await self._battles.remaining_today(discord_id)

    async def start_battle(
        self,
        discord_id: int,
        audio: bytes,
        audio_seconds: float,
        audio_format: str,
        ui: dict[str, Any] | None = None,
    ) -> Battle:
        return await self._battles.start_battle(discord_id, audio, audio_seconds, audio_format, ui)

    async def set_ui(self, battle_id: str, **fields: Any) -> None:
        await self._battles.set_ui(battle_id, **fields)

    async def record_reply(self, result: ResultMessage) -> tuple[Battle, bool]:
        return await self._battles.record_reply(result)

    async def battle(self, battle_id: str) -> Battle | None:
        return await self._battles.battle(battle_id)

    async def reply_audio(self, battle_id: str) -> dict[str, bytes]:
        return await self._battles.reply_audio(battle_id)

    async def open_battles(self) -> list[Battle]:
        return await self._battles.open_battles()

    def iter_battles(self, batch: int = 1000) -> AsyncIterator[Battle]:
        return iter_battles(self.redis, batch=batch)

    def iter_participants(self, batch: int = 1000) -> AsyncIterator[Participant]:
        return iter_participants(self.redis, batch=batch)

    # ---------------------------------------------------------------- votes and comments

    async def vote(self, discord_id: int, battle_id: str, winner: Winner) -> tuple[Battle, int]:
        return await self._votes.vote(discord_id, battle_id, winner)

    async def comment(self, discord_id: int, battle_id: str, text: str) -> Battle:
        return await self._votes.comment(discord_id, battle_id, text)

    # ---------------------------------------------------------------- turns and reasons

    async def open_battle_in(self, discord_id: int, place: str) -> Battle | None:
        return await self._turns.open_battle_in(discord_id, place)

    async def continue_battle(
        self,
        discord_id: int,
        battle_id: str,
        audio: bytes,
        audio_seconds: float,
        audio_format: str,
        ui: dict[str, Any] | None = None,
    ) -> Battle:
        return await self._turns.continue_battle(
            discord_id, battle_id, audio, audio_seconds, audio_format, ui
        )

    async def record_transcript(self, battle_id: str, turn: int, text: str) -> bool:
        return await self._turns.record_transcript(battle_id, turn, text)

    async def set_loss_reason(self, discord_id: int, battle_id: str, reason: str) -> Battle:
        return await self._reasons.set_loss_reason(discord_id, battle_id, reason)

    async def await_voice_reason(self, discord_id: int, battle_id: str, place: str) -> None:
        await self._reasons.await_voice_reason(discord_id, battle_id, place)

    async def awaited_reason(self, discord_id: int, place: str) -> str | None:
        return await self._reasons.awaited_reason(discord_id, place)

    async def take_voice_reason(
        self, discord_id: int, battle_id: str, place: str, audio: bytes
    ) -> None:
        await self._reasons.take_voice_reason(discord_id, battle_id, place, audio)

    async def record_voice_reason(self, battle_id: str, text: str) -> Battle | None:
        return await self._reasons.record_voice_reason(battle_id, text)

    async def drop_voice_reason(self, battle_id: str) -> None:
        await self._reasons.drop_voice_reason(battle_id)

    # ---------------------------------------------------------------- summary

    async def pair_outcomes(self) -> dict[str, PairOutcome]:
        """Decided votes per pair so far (what `active` pairing and votes-still-needed read)."""
        return await read_outcomes(self._ctx.redis)

    async def summary(self) -> dict[str, Any]:
        return await summary_module.summary(self.redis, await self.config())
