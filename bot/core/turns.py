"""Multi-turn battles: the participant's next voice message in a battle's place continues it.

A battle stays open for more turns while it is answered and not voted; each turn's clip is kept
like the first (a file in the data dir, its bytes under `keys.turn_audio_key`), the earlier
turn's replies move to the battle's `turn<n>.*` fields, and the battle is queued again. A vote
ends it. The study's ASR transcribes each turn's clip for the models' histories
(`record_transcript`); see docs/data-model.md ("Turns").
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from bot.core import audio_files
from bot.core.battles import ui_fields
from bot.core.codec import as_text, battle_from_hash
from bot.core.context import StudyContext
from bot.core.reading import read_battles
from bot.core.refusals import refused
from bot.core.scripts import ContinueBattle, SetTranscript
from bot.core.study_config import ConfigStore
from contract import keys
from contract.events import TurnStarted, TurnTranscribed
from contract.records import Battle, BattleStatus, Limits


class Turns:
    def __init__(self, ctx: StudyContext, config: ConfigStore) -> None:
        self._ctx = ctx
        self._config = config

    async def open_battle_in(self, discord_id: int, place: str) -> Battle | None:
        """The participant's newest unvoted battle whose message is in `place` (a channel id):
        the battle their next voice message there continues."""
        p = self._ctx.pseudonym(discord_id)
        members = await self._ctx.redis.sinter([keys.participant_battles(p), keys.OPEN_BATTLES])
        battles = await read_battles(self._ctx.redis, sorted(as_text(m) for m in members))
        here = [
            b
            for b in battles
            if str(b.ui.get("channel_id")) == str(place)
            and b.status in (BattleStatus.QUEUED, BattleStatus.ANSWERED)
        ]
        return max(here, key=lambda b: b.created_at) if here else None

    async def continue_battle(
        self,
        discord_id: int,
        battle_id: str,
        audio: bytes,
        audio_seconds: float,
        audio_format: str,
        ui: dict[str, Any] | None = None,
    ) -> Battle:
        """Add the next turn to an answered, unvoted battle; returns it queued for that turn.

        Refused codes: turn_limit, not_ready (still answering), already_voted, failed,
        not_your_battle, no_such_battle, and the participant's and study's own states.
        """
        fmt = audio_files.check_format(audio_format)
        if not isinstance(audio, bytes | bytearray) or not audio:
            raise ValueError(f"audio must be non-empty bytes, got {type(audio).__name__}")
        if not audio_seconds > 0:
            raise ValueError(f"audio_seconds must be positive, got {audio_seconds!r}")
        limits = (await self._config.config()).limits
        if audio_seconds > limits.audio_max_seconds:
            raise refused("audio_too_long", limit=limits.audio_max_seconds)
        if len(audio) > limits.audio_max_bytes:
            raise refused("audio_too_large", limit=limits.audio_max_bytes)
        current = await self._ctx.redis.hget(keys.battle(battle_id), "turn")
        turn = int(current or b"1") + 1
        ref = audio_files.turn_audio_ref(battle_id, turn, fmt, secrets.token_hex(4))
        data_dir = self._ctx.data_dir
        await asyncio.to_thread(audio_files.write_audio, data_dir, ref, bytes(audio))
        now = self._ctx.clock()
        started = TurnStarted(
            battle_id=battle_id,
            participant=self._ctx.pseudonym(discord_id),
            turn=turn,
            audio_ref=ref,
            audio_format=fmt,
            audio_seconds=float(audio_seconds),
            audio_bytes=len(audio),
            at=now,
        )
        outcome = await self._ctx.scripts.run(
            ContinueBattle(
                started=started,
                audio=bytes(audio),
                default_max_turns=Limits().max_turns,
                ui=ui_fields(ui or {}),
            )
        )
        if outcome.code != "ok":
            # No turn holds this file, so it must not stay.
            await asyncio.to_thread((data_dir / ref).unlink, True)
            if outcome.code == "turn_limit":
                raise refused("turn_limit", limit=int(outcome.detail))
            raise refused(outcome.code)
        return battle_from_hash(outcome.record)

    async def record_transcript(self, battle_id: str, turn: int, text: str) -> bool:
        """Keep the study ASR's transcript of one turn's clip; False when the battle is gone."""
        participant = await self._ctx.redis.hget(keys.battle(battle_id), "participant")
        if participant is None:
            return False
        return await self._ctx.scripts.run(
            SetTranscript(
                transcribed=TurnTranscribed(
                    battle_id=battle_id,
                    participant=as_text(participant),
                    turn=turn,
                    text=text,
                    at=self._ctx.clock(),
                )
            )
        )
