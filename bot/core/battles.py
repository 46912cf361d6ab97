"""Battles: eligibility, starting one (audio, pair, quota), worker replies, UI refs, reading."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
from typing import Any

from bot.core import audio_files
from bot.core.codec import as_text, battle_from_hash, decode_hash, reply_json
from bot.core.context import StudyContext, utc_day
from bot.core.reading import read_battles, read_outcomes
from bot.core.refusals import refused, refused_until
from bot.core.scripts import CheckEligibility, RecordReply, SetUi, StartBattle
from bot.core.study_config import ConfigStore
from contract import keys
from contract.events import BattleStarted, ReplyReceived
from contract.pairing import PairOutcome, draw_battle_models
from contract.protocol import ResultMessage
from contract.records import Battle, Strategy, StudyConfig

# A moderator changing the roster between our read and our write makes us draw again.
MAX_DRAWS = 5
_UI_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")


def ui_fields(ui: dict[str, Any]) -> dict[str, str]:
    """Opaque Discord references as battle fields `ui.<name>` (JSON values)."""
    out: dict[str, str] = {}
    for name, value in ui.items():
        if not _UI_NAME.match(name):
            raise ValueError(f"ui field names must be lowercase identifiers, got {name!r}")
        out[f"ui.{name}"] = json.dumps(value)
    return out


class Battles:
    def __init__(self, ctx: StudyContext, config: ConfigStore) -> None:
        self._ctx = ctx
        self._config = config

    async def check_eligibility(self, discord_id: int) -> None:
        """Raise Refused if the participant cannot start a battle now (before any download)."""
        await self._config.ensure()
        now = self._ctx.clock()
        day, day_end = utc_day(now)
        outcome = await self._ctx.scripts.run(
            CheckEligibility(
                pseudonym=self._ctx.pseudonym(discord_id), day=day, now=now, day_end=day_end
            )
        )
        if outcome.code != "ok":
            raise refused_until(outcome.code, outcome.detail)

    async def remaining_today(self, discord_id: int) -> int:
        config = await self._config.config()
        day, _ = utc_day(self._ctx.clock())
        used = await self._ctx.redis.get(keys.daily(self._ctx.pseudonym(discord_id), day))
        return max(config.limits.daily_quota - int(used or 0), 0)

    async def start_battle(
        self,
        discord_id: int,
        audio: bytes,
        audio_seconds: float,
        audio_format: str,
        ui: dict[str, Any] | None = None,
    ) -> Battle:
        p = self._ctx.pseudonym(discord_id)
        fmt = audio_files.check_format(audio_format)
        if not isinstance(audio, bytes | bytearray) or not audio:
            raise ValueError(f"audio must be non-empty bytes, got {type(audio).__name__}")
        if not audio_seconds > 0:
            raise ValueError(f"audio_seconds must be positive, got {audio_seconds!r}")
        ui_encoded = ui_fields(ui or {})
        config = await self._config.config()
        if audio_seconds > config.limits.audio_max_seconds:
            raise refused("audio_too_long", limit=config.limits.audio_max_seconds)
        if len(audio) > config.limits.audio_max_bytes:
            raise refused("audio_too_large", limit=config.limits.audio_max_bytes)

        battle_id = secrets.token_hex(8)
        ref = audio_files.audio_ref(battle_id, fmt)
        data_dir = self._ctx.data_dir
        await asyncio.to_thread(audio_files.write_audio, data_dir, ref, bytes(audio))
        try:
            return await self._create(
                p, battle_id, ref, bytes(audio), float(audio_seconds), fmt, ui_encoded, config
            )
        except BaseException:
            # Refused, or Redis failed: no battle holds this file, so it must not stay.
            await asyncio.to_thread(audio_files.delete_audio, data_dir, battle_id)
            raise

    async def _create(
        self,
        p: str,
        battle_id: str,
        ref: str,
        audio: bytes,
        audio_seconds: float,
        fmt: str,
        ui_encoded: dict[str, str],
        config: StudyConfig,
    ) -> Battle:
        for _ in range(MAX_DRAWS):
            now = self._ctx.clock()
            day, day_end = utc_day(now)
            if len(config.roster) < 2:
                raise refused("roster_too_small")
            counts: dict[str, int] = {}
            outcomes: dict[str, PairOutcome] | None = None
            if config.strategy in (Strategy.BALANCED, Strategy.ACTIVE):
                raw = await self._ctx.redis.hgetall(keys.PAIR_BATTLES)
                counts = {as_text(k): int(v) for k, v in raw.items()}
            if config.strategy is Strategy.ACTIVE:
                outcomes = await read_outcomes(self._ctx.redis)
            model_a, model_b = draw_battle_models(
                config.roster,
                config.strategy,
                counts,
                config.limits.pair_target,
                self._ctx.rng,
                outcomes,
            )
            call = StartBattle(
                started=BattleStarted(
                    battle_id=battle_id,
                    participant=p,
                    model_a=model_a,
                    model_b=model_b,
                    strategy=config.strategy,
                    created_at=now,
                    audio_ref=ref,
                    audio_format=fmt,
                    audio_seconds=audio_seconds,
                    audio_bytes=len(audio),
                    at=now,
                    reply_mode=config.replies,
                ),
                day=day,
                day_end=day_end,
                audio=audio,
                ui=ui_encoded,
            )
            outcome = await self._ctx.scripts.run(call)
            if outcome.code == "ok":
                return battle_from_hash(call.record())
            if outcome.code != "roster_changed":
                raise refused_until(outcome.code, outcome.detail)
            config = await self._config.config()
        raise RuntimeError(f"the roster kept changing while drawing a pair ({MAX_DRAWS} tries)")

    async def set_ui(self, battle_id: str, **fields: Any) -> None:
        """Keep opaque references (channel id, message id, ...) with a battle."""
        if not fields:
            return
        done = await self._ctx.scripts.run(SetUi(battle_id=battle_id, fields=ui_fields(fields)))
        if not done:
            raise refused("no_such_battle")

    async def record_reply(self, result: ResultMessage) -> tuple[Battle, bool]:
        """Record one model's reply; idempotent under at-least-once delivery.

        Returns (battle, changed). A reply with an error turns the battle FAILED, and the battle
        is given back to the participant's daily quota (the failure was not theirs).
        """
        if result.side not in ("a", "b"):
            raise ValueError(f"result side must be 'a' or 'b', got {result.side!r}")
        participant, day = await self._ctx.redis.hmget(
            keys.battle(result.battle_id), ["participant", "day"]
        )
        if participant is None or day is None:
            await self._drop_reply_audio(result)
            raise refused("no_such_battle")
        named: tuple[str, ...] = ()
        if result.reply:
            # Masked before it is stored: no copy of a model's self-introduction is shown.
            guarded = self._ctx.guard.check(result.reply)
            if guarded.leaked:
                result = dataclasses.replace(result, reply=guarded.text)
                named = tuple(sorted(guarded.named))
        received = ReplyReceived(
            result=result, participant=as_text(participant), at=self._ctx.clock(), named=named
        )
        outcome = await self._ctx.scripts.run(
            RecordReply(
                received=received, reply_json=reply_json(received.reply()), day=as_text(day)
            )
        )
        if outcome.code == "missing":
            await self._drop_reply_audio(result)
            raise refused("no_such_battle")
        if outcome.code == "mismatch":
            raise ValueError(
                f"result for battle {result.battle_id} side {result.side} names model "
                f"{result.model_id!r}, but that side is {outcome.detail!r}"
            )
        return battle_from_hash(outcome.record), outcome.code == "changed"

    async def _drop_reply_audio(self, result: ResultMessage) -> None:
        """A spoken reply for a battle that is gone (the participant withdrew while the worker
        spoke) must not outlive it: the withdrawal could not delete what was not there yet."""
        if result.audio_key is not None:
            await self._ctx.redis.delete(keys.reply_audio_key(result.battle_id, result.side))

    async def reply_audio(self, battle_id: str) -> dict[str, bytes]:
        """The spoken replies still in Redis, by side ("a"/"b"); empty for a text battle."""
        raw = await self._ctx.redis.mget(
            [keys.reply_audio_key(battle_id, side) for side in ("a", "b")]
        )
        # Audio is stored as bytes and our client does not decode replies: `bytes` narrows
        # redis-py's `bytes | str | None`.
        return {
            side: data
            for side, data in zip(("a", "b"), raw, strict=True)
            if isinstance(data, bytes) and data
        }

    async def battle(self, battle_id: str) -> Battle | None:
        raw = await self._ctx.redis.hgetall(keys.battle(battle_id))
        return battle_from_hash(decode_hash(raw)) if raw else None

    async def open_battles(self) -> list[Battle]:
        """Queued or answered battles, oldest first (the Discord layer resumes them on restart)."""
        members = await self._ctx.redis.smembers(keys.OPEN_BATTLES)
        battles = await read_battles(self._ctx.redis, sorted(as_text(m) for m in members))
        return sorted(battles, key=lambda b: b.created_at)
