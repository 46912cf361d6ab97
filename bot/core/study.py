"""The study core: participants, study state, battles, votes, comments, withdrawal.

Plain async Python over one `redis.asyncio.Redis` (decode_responses=False); never imports
discord. Every multi-key write is one Lua script (scripts.py), so rules are checked and state is
written in one atomic step: two clicks, two messages or two workers racing cannot both pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from bot.core import audio_files, scripts
from bot.core.codec import (
    LIMIT_FIELDS,
    battle_from_hash,
    battle_json,
    config_from_hash,
    decode_hash,
    fmt_time,
    limit_fields,
    participant_from_hash,
    participant_json,
    reply_json,
)
from bot.core.persistence import check_persistence
from bot.core.reading import iter_battles, iter_participants
from bot.core.refusals import refused
from bot.core.streams import scrub_streams
from contract import keys
from contract.keys import AUDIO_TTL_S, audio_key
from contract.modelsfile import ModelsFile
from contract.pairing import draw_battle_models
from contract.protocol import ResultMessage
from contract.records import (
    Battle,
    Demographics,
    Limits,
    Participant,
    Refused,
    Reply,
    Strategy,
    StudyConfig,
    StudyState,
    Winner,
)

PSEUDONYM_CHARS = 16
MAX_COMMENTS_PER_BATTLE = 10
DEMOGRAPHIC_MAX_CHARS = 64
# Daily counters outlive their day a little, so a clock near midnight still finds them.
DAILY_TTL_S = 3 * 24 * 3600
# A moderator changing the roster between our read and our write makes us draw again.
_MAX_DRAWS = 5
_UI_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")


def utc_day(at: float) -> tuple[str, float]:
    """The UTC day of `at` as YYYY-MM-DD, and the unix time that day ends."""
    moment = datetime.fromtimestamp(at, UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%d"), (start + timedelta(days=1)).timestamp()


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
    ) -> None:
        if len(secret) < 16:
            raise ValueError(f"secret must be at least 16 bytes (got {len(secret)})")
        self.redis = redis
        self.secret = secret
        self.data_dir = Path(data_dir)
        self.known_models = known_models
        self.rng = rng
        self.clock = clock
        self._config_ready = False
        self._check_eligibility = redis.register_script(scripts.CHECK_ELIGIBILITY)
        self._start_battle = redis.register_script(scripts.START_BATTLE)
        self._record_reply = redis.register_script(scripts.RECORD_REPLY)
        self._vote = redis.register_script(scripts.VOTE)
        self._comment = redis.register_script(scripts.COMMENT)
        self._update_participant = redis.register_script(scripts.UPDATE_PARTICIPANT)
        self._withdraw = redis.register_script(scripts.WITHDRAW)
        self._init_config = redis.register_script(scripts.INIT_CONFIG)
        self._set_ui = redis.register_script(scripts.SET_UI)

    async def check_persistence(self, *, allow_volatile: bool) -> list[str]:
        return await check_persistence(self.redis, allow_volatile=allow_volatile)

    def pseudonym(self, discord_id: int) -> str:
        if isinstance(discord_id, bool) or not isinstance(discord_id, int) or discord_id <= 0:
            raise ValueError(f"discord_id must be a positive int, got {discord_id!r}")
        digest = hmac.new(self.secret, str(discord_id).encode(), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_CHARS]

    # ---------------------------------------------------------------- participants

    async def participant(self, discord_id: int) -> Participant | None:
        raw = await self.redis.hgetall(keys.participant(self.pseudonym(discord_id)))
        return participant_from_hash(decode_hash(raw)) if raw else None

    async def _update(
        self,
        pseudonym: str,
        event: str,
        data: dict[str, Any],
        fields: Sequence[str],
        guard: tuple[str, str] = ("", ""),
    ) -> Participant:
        now = self.clock()
        data = {"participant": pseudonym, "at": now, **data}
        result = await self._update_participant(
            keys=[
                keys.participant(pseudonym),
                keys.PARTICIPANTS,
                keys.EVENTS,
                keys.participant_events(pseudonym),
            ],
            args=[pseudonym, fmt_time(now), event, json.dumps(data), *guard, *fields],
        )
        if result[0] == b"withdrawn":
            raise refused("withdrawn")
        return participant_from_hash(decode_hash(result[2:]))

    async def consent(self, discord_id: int, version: str) -> Participant:
        if not isinstance(version, str) or not version.strip():
            raise ValueError(f"consent version must be a non-empty string, got {version!r}")
        p = self.pseudonym(discord_id)
        now = fmt_time(self.clock())
        return await self._update(
            p,
            "consent",
            {"version": version},
            ["consent_version", version, "consented_at", now],
            guard=("consent_version", version),
        )

    async def set_demographics(self, discord_id: int, demographics: Demographics) -> Participant:
        clean: dict[str, str | None] = {}
        for name, value in dataclasses.asdict(demographics).items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"demographics.{name} must be a string or None, got {value!r}")
            value = value.strip() if value else None
            if value and len(value) > DEMOGRAPHIC_MAX_CHARS:
                raise ValueError(
                    f"demographics.{name} is longer than {DEMOGRAPHIC_MAX_CHARS} characters: "
                    f"{value[:80]!r}"
                )
            clean[name] = value or None
        current = await self.participant(discord_id)
        if current is None or not current.has_consented:
            raise refused("no_consent")
        p = self.pseudonym(discord_id)
        return await self._update(
            p, "demographics", {"demographics": clean}, ["demographics", json.dumps(clean)]
        )

    async def block(self, discord_id: int, reason: str, by: str) -> Participant:
        p = self.pseudonym(discord_id)
        now = fmt_time(self.clock())
        return await self._update(
            p,
            "blocked",
            {"reason": reason, "by": by},
            ["status", "blocked", "blocked_reason", reason, "blocked_by", by, "blocked_at", now],
        )

    async def unblock(self, discord_id: int, by: str) -> Participant:
        p = self.pseudonym(discord_id)
        return await self._update(
            p,
            "unblocked",
            {"by": by},
            ["status", "active", "blocked_reason", "", "blocked_by", "", "blocked_at", ""],
            guard=("status", "active"),
        )

    async def withdraw(self, discord_id: int) -> None:
        """Delete everything about the participant but the record that they withdrew, and when.

        One script deletes their battles, audio bytes, counts and events in Redis; then their
        audio files go and the worker streams are scrubbed of their battles' results.
        """
        p = self.pseudonym(discord_id)
        now = self.clock()
        result = await self._withdraw(
            keys=[
                keys.participant(p),
                keys.participant_battles(p),
                keys.participant_events(p),
                keys.BATTLES,
                keys.OPEN_BATTLES,
                keys.PAIR_BATTLES,
                keys.PAIR_VOTES,
                keys.STATUS_COUNTS,
                keys.EVENTS,
                keys.PARTICIPANTS,
            ],
            args=[
                p,
                fmt_time(now),
                json.dumps({"participant": p, "at": now}),
                keys.BATTLE_PREFIX,
                keys.AUDIO_PREFIX,
                keys.daily_prefix(p),
            ],
        )
        battle_ids = {raw.decode() for raw in result[1:]}
        # Audio files of an earlier, interrupted withdrawal are deleted again: harmless.
        for battle_id in battle_ids:
            await asyncio.to_thread(audio_files.delete_audio, self.data_dir, battle_id)
        if battle_ids:
            await scrub_streams(self.redis, battle_ids)

    async def my_data(self, discord_id: int) -> dict[str, Any]:
        """Everything stored about the participant, JSON-able (for a data-access request)."""
        participant = await self.participant(discord_id)
        if participant is None:
            return {"participant": None, "battles": []}
        p = participant.pseudonym
        ids = sorted(m.decode() for m in await self.redis.smembers(keys.participant_battles(p)))
        battles = await self._battles(ids)
        return {
            "participant": participant_json(participant),
            "battles": [battle_json(b) for b in sorted(battles, key=lambda b: b.created_at)],
        }

    # ---------------------------------------------------------------- study state

    async def _ensure_config(self) -> None:
        if self._config_ready:
            return
        pairs = limit_fields(Limits())
        roster = sorted(self.known_models.models)
        now = self.clock()
        event = {
            "by": "parley",
            "at": now,
            "state": StudyState.OPEN.value,
            "strategy": Strategy.UNIFORM.value,
            "roster": roster,
            "limits": dataclasses.asdict(Limits()),
        }
        await self._init_config(
            keys=[keys.CONFIG, keys.ROSTER, keys.EVENTS],
            args=[fmt_time(now), json.dumps(event), len(pairs) // 2, *pairs, *roster],
        )
        self._config_ready = True

    async def config(self) -> StudyConfig:
        await self._ensure_config()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.CONFIG)
            pipe.smembers(keys.ROSTER)
            raw, roster = await pipe.execute()
        return config_from_hash(decode_hash(raw), [m.decode() for m in roster])

    async def _config_change(self, by: str, change: dict[str, Any], *writes: Any) -> StudyConfig:
        await self._ensure_config()
        event = {"by": by, "at": self.clock(), **change}
        async with self.redis.pipeline(transaction=True) as pipe:
            for write in writes:
                write(pipe)
            pipe.xadd(keys.EVENTS, {"type": "config", "data": json.dumps(event)})
            await pipe.execute()
        return await self.config()

    async def set_state(self, state: StudyState, by: str) -> StudyConfig:
        state = StudyState(state)
        return await self._config_change(
            by, {"state": state.value}, lambda pipe: pipe.hset(keys.CONFIG, "state", state.value)
        )

    async def set_strategy(self, strategy: Strategy, by: str) -> StudyConfig:
        strategy = Strategy(strategy)
        return await self._config_change(
            by,
            {"strategy": strategy.value},
            lambda pipe: pipe.hset(keys.CONFIG, "strategy", strategy.value),
        )

    async def set_roster(self, roster: list[str], by: str) -> StudyConfig:
        models = sorted(set(roster))
        unknown = [m for m in models if m not in self.known_models.models]
        if unknown:
            raise refused(
                "unknown_model", bad=", ".join(unknown), known=", ".join(self.known_models.models)
            )

        def write(pipe: Any) -> None:
            pipe.delete(keys.ROSTER)
            if models:
                pipe.sadd(keys.ROSTER, *models)

        return await self._config_change(by, {"roster": models}, write)

    async def set_limits(self, by: str, **fields: Any) -> StudyConfig:
        values: dict[str, str] = {}
        for name, value in fields.items():
            kind = LIMIT_FIELDS.get(name)
            if kind is None:
                raise refused(
                    "invalid_limit",
                    detail=f"Unknown limit {name!r}; limits: {', '.join(LIMIT_FIELDS)}.",
                )
            wants_int = kind in (int, "int")
            ok_type = isinstance(value, int) if wants_int else isinstance(value, int | float)
            if isinstance(value, bool) or not ok_type or value < 0 or value != value:
                raise refused(
                    "invalid_limit",
                    detail=f"Limit {name} must be a non-negative "
                    f"{'whole number' if wants_int else 'number'}, got {value!r}.",
                )
            values[f"limit.{name}"] = repr(int(value) if wants_int else float(value))
        if not values:
            return await self.config()
        return await self._config_change(
            by,
            {"limits": dict(fields)},
            lambda pipe: pipe.hset(keys.CONFIG, mapping=values),
        )

    # ---------------------------------------------------------------- battles

    def _refusal(self, code: str, detail: str) -> Refused:
        return refused(code, retry_at=float(detail) if detail else None)

    async def check_eligibility(self, discord_id: int) -> None:
        """Raise Refused if the participant cannot start a battle now (before any download)."""
        await self._ensure_config()
        p = self.pseudonym(discord_id)
        now = self.clock()
        day, day_end = utc_day(now)
        code, detail = await self._check_eligibility(
            keys=[keys.CONFIG, keys.ROSTER, keys.participant(p), keys.daily(p, day)],
            args=[fmt_time(now), fmt_time(day_end)],
        )
        if code != b"ok":
            raise self._refusal(code.decode(), detail.decode())

    async def remaining_today(self, discord_id: int) -> int:
        config = await self.config()
        day, _ = utc_day(self.clock())
        used = await self.redis.get(keys.daily(self.pseudonym(discord_id), day))
        return max(config.limits.daily_quota - int(used or 0), 0)

    async def start_battle(
        self,
        discord_id: int,
        audio: bytes,
        audio_seconds: float,
        audio_format: str,
        ui: dict[str, Any] | None = None,
    ) -> Battle:
        p = self.pseudonym(discord_id)
        fmt = audio_files.check_format(audio_format)
        if not isinstance(audio, bytes | bytearray) or not audio:
            raise ValueError(f"audio must be non-empty bytes, got {type(audio).__name__}")
        if not audio_seconds > 0:
            raise ValueError(f"audio_seconds must be positive, got {audio_seconds!r}")
        ui_fields = _ui_fields(ui or {})
        config = await self.config()
        if audio_seconds > config.limits.audio_max_seconds:
            raise refused("audio_too_long", limit=config.limits.audio_max_seconds)
        if len(audio) > config.limits.audio_max_bytes:
            raise refused("audio_too_large", limit=config.limits.audio_max_bytes)

        battle_id = secrets.token_hex(8)
        ref = audio_files.audio_ref(battle_id, fmt)
        await asyncio.to_thread(audio_files.write_audio, self.data_dir, ref, bytes(audio))
        try:
            return await self._create_battle(
                p, battle_id, ref, bytes(audio), float(audio_seconds), fmt, ui_fields, config
            )
        except BaseException:
            # Refused, or Redis failed: no battle holds this file, so it must not stay.
            await asyncio.to_thread(audio_files.delete_audio, self.data_dir, battle_id)
            raise

    async def _create_battle(
        self,
        p: str,
        battle_id: str,
        ref: str,
        audio: bytes,
        audio_seconds: float,
        fmt: str,
        ui_fields: list[str],
        config: StudyConfig,
    ) -> Battle:
        for _ in range(_MAX_DRAWS):
            now = self.clock()
            day, day_end = utc_day(now)
            if len(config.roster) < 2:
                raise refused("roster_too_small")
            counts: dict[str, int] = {}
            if config.strategy is Strategy.BALANCED:
                raw = await self.redis.hgetall(keys.PAIR_BATTLES)
                counts = {k.decode(): int(v) for k, v in raw.items()}
            model_a, model_b = draw_battle_models(
                config.roster, config.strategy, counts, config.limits.pair_target, self.rng
            )
            fields = {
                "battle_id": battle_id,
                "participant": p,
                "model_a": model_a,
                "model_b": model_b,
                "pair": keys.pair_field(model_a, model_b),
                "status": "queued",
                "strategy": config.strategy.value,
                "created_at": fmt_time(now),
                "day": day,
                "audio_ref": ref,
                "audio_format": fmt,
                "audio_seconds": repr(audio_seconds),
                "audio_bytes": str(len(audio)),
            }
            event = {k: v for k, v in fields.items() if k not in ("status", "day", "pair")}
            code, detail = await self._start_battle(
                keys=[
                    keys.CONFIG,
                    keys.ROSTER,
                    keys.participant(p),
                    keys.daily(p, day),
                    keys.battle(battle_id),
                    keys.BATTLES,
                    keys.OPEN_BATTLES,
                    keys.participant_battles(p),
                    keys.PAIR_BATTLES,
                    keys.STATUS_COUNTS,
                    keys.EVENTS,
                    keys.participant_events(p),
                    audio_key(battle_id),
                ],
                args=[
                    fmt_time(now),
                    fmt_time(day_end),
                    model_a,
                    model_b,
                    fields["pair"],
                    battle_id,
                    audio,
                    AUDIO_TTL_S,
                    json.dumps({**event, "at": now}),
                    DAILY_TTL_S,
                    *[x for kv in fields.items() for x in kv],
                    *ui_fields,
                ],
            )
            if code == b"ok":
                ui_decoded = dict(zip(ui_fields[::2], ui_fields[1::2], strict=True))
                return battle_from_hash({**fields, **ui_decoded})
            if code != b"roster_changed":
                raise self._refusal(code.decode(), detail.decode())
            config = await self.config()
        raise RuntimeError(f"the roster kept changing while drawing a pair ({_MAX_DRAWS} tries)")

    async def set_ui(self, battle_id: str, **fields: Any) -> None:
        """Keep opaque references (channel id, message id, ...) with a battle."""
        if not fields:
            return
        done = await self._set_ui(keys=[keys.battle(battle_id)], args=_ui_fields(fields))
        if not done:
            raise refused("no_such_battle")

    async def record_reply(self, result: ResultMessage) -> tuple[Battle, bool]:
        """Record one model's reply; idempotent under at-least-once delivery.

        Returns (battle, changed). A reply with an error turns the battle FAILED, and the battle
        is given back to the participant's daily quota (the failure was not theirs).
        """
        if result.side not in ("a", "b"):
            raise ValueError(f"result side must be 'a' or 'b', got {result.side!r}")
        participant, day = await self.redis.hmget(
            keys.battle(result.battle_id), ["participant", "day"]
        )
        if participant is None:
            raise refused("no_such_battle")
        p = participant.decode()
        now = self.clock()
        reply = Reply(
            side=result.side,
            model_id=result.model_id,
            text=result.reply,
            transcript=result.transcript,
            timings={k: float(v) for k, v in result.timings.items()},
            error=result.error,
            received_at=now,
        )
        event = {**dataclasses.asdict(result), "participant": p, "at": now}
        out = await self._record_reply(
            keys=[
                keys.battle(result.battle_id),
                keys.OPEN_BATTLES,
                keys.PAIR_BATTLES,
                keys.STATUS_COUNTS,
                keys.EVENTS,
                keys.participant_events(p),
                keys.daily(p, day.decode()),
            ],
            args=[
                result.side,
                result.model_id,
                reply_json(reply),
                fmt_time(now),
                "1" if result.ok else "0",
                json.dumps(event, ensure_ascii=False),
                f"error_{result.side}:{result.error_kind or 'unknown'}",
                result.battle_id,
            ],
        )
        code = out[0].decode()
        if code == "missing":
            raise refused("no_such_battle")
        if code == "mismatch":
            raise ValueError(
                f"result for battle {result.battle_id} side {result.side} names model "
                f"{result.model_id!r}, but that side is {out[1].decode()!r}"
            )
        return battle_from_hash(decode_hash(out[2:])), code == "changed"

    async def vote(self, discord_id: int, battle_id: str, winner: Winner) -> tuple[Battle, int]:
        """Record the vote and the reveal in one write. Returns (battle, battles left today)."""
        winner = Winner(winner)
        p = self.pseudonym(discord_id)
        now = self.clock()
        day, _ = utc_day(now)
        event = {"battle_id": battle_id, "participant": p, "winner": winner.value, "at": now}
        out = await self._vote(
            keys=[
                keys.battle(battle_id),
                keys.OPEN_BATTLES,
                keys.PAIR_VOTES,
                keys.STATUS_COUNTS,
                keys.EVENTS,
                keys.participant_events(p),
                keys.daily(p, day),
                keys.CONFIG,
            ],
            args=[p, winner.value, fmt_time(now), json.dumps(event), battle_id],
        )
        if out[0] != b"ok":
            raise refused(out[0].decode())
        return battle_from_hash(decode_hash(out[2:])), int(out[1])

    async def comment(self, discord_id: int, battle_id: str, text: str) -> Battle:
        if not isinstance(text, str):
            raise ValueError(f"comment must be a string, got {type(text).__name__}")
        text = text.strip()
        if not text:
            raise refused("empty_comment")
        limit = (await self.config()).limits.comment_max_chars
        if len(text) > limit:
            raise refused("comment_too_long", limit=limit)
        p = self.pseudonym(discord_id)
        now = self.clock()
        out = await self._comment(
            keys=[keys.battle(battle_id), keys.EVENTS, keys.participant_events(p)],
            args=[
                p,
                json.dumps({"text": text, "at": now}, ensure_ascii=False),
                MAX_COMMENTS_PER_BATTLE,
                json.dumps(
                    {"battle_id": battle_id, "participant": p, "text": text, "at": now},
                    ensure_ascii=False,
                ),
            ],
        )
        if out[0] != b"ok":
            raise refused(out[0].decode(), limit=MAX_COMMENTS_PER_BATTLE)
        return battle_from_hash(decode_hash(out[2:]))

    async def battle(self, battle_id: str) -> Battle | None:
        raw = await self.redis.hgetall(keys.battle(battle_id))
        return battle_from_hash(decode_hash(raw)) if raw else None

    async def _battles(self, battle_ids: Sequence[str]) -> list[Battle]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for battle_id in battle_ids:
                pipe.hgetall(keys.battle(battle_id))
            raws = await pipe.execute()
        # A battle deleted between listing and reading (withdrawal) is simply gone.
        return [battle_from_hash(decode_hash(raw)) for raw in raws if raw]

    async def open_battles(self) -> list[Battle]:
        """Queued or answered battles, oldest first (the Discord layer resumes them on restart)."""
        ids = sorted(m.decode() for m in await self.redis.smembers(keys.OPEN_BATTLES))
        return sorted(await self._battles(ids), key=lambda b: b.created_at)

    def iter_battles(self, batch: int = 1000) -> AsyncIterator[Battle]:
        return iter_battles(self.redis, batch=batch)

    def iter_participants(self, batch: int = 1000) -> AsyncIterator[Participant]:
        return iter_participants(self.redis, batch=batch)

    async def summary(self) -> dict[str, Any]:
        """Battles by status, battles and votes per pair and per model; JSON-able."""
        config = await self.config()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.STATUS_COUNTS)
            pipe.hgetall(keys.PAIR_BATTLES)
            pipe.hgetall(keys.PAIR_VOTES)
            pipe.scard(keys.PARTICIPANTS)
            by_status, pair_battles, pair_votes, n_participants = await pipe.execute()

        def counts(raw: dict[bytes, bytes]) -> dict[str, int]:
            return {k.decode(): int(v) for k, v in sorted(raw.items()) if int(v)}

        pairs_b, pairs_v = counts(pair_battles), counts(pair_votes)
        models: dict[str, dict[str, int]] = {}
        for table, name in ((pairs_b, "battles"), (pairs_v, "votes")):
            for pair, n in table.items():
                for model in keys.split_pair(pair):
                    models.setdefault(model, {"battles": 0, "votes": 0})[name] += n
        return {
            "state": config.state.value,
            "strategy": config.strategy.value,
            "roster": list(config.roster),
            "participants": n_participants,
            "battles_by_status": counts(by_status),
            "battles_per_pair": pairs_b,
            "votes_per_pair": pairs_v,
            "per_model": dict(sorted(models.items())),
        }


def _ui_fields(ui: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in ui.items():
        if not _UI_NAME.match(name):
            raise ValueError(f"ui field names must be lowercase identifiers, got {name!r}")
        out += [f"ui.{name}", json.dumps(value)]
    return out
