"""Typed calls of the core's Lua scripts (lua.py): named values in, parsed results out.

One frozen dataclass per script holds what a call needs, by name; its `keys()` and `argv()`
map those to the script's declared KEYS/ARGV names (lua.LuaScript checks that every name is
given exactly once), and `parse()` reads the reply. `Scripts(redis).run(call)` registers each
script once per client (EVALSHA with EVAL fallback) and runs it. Events come as
contract.events dataclasses, so what a script appends to the stream is defined once.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from bot.core import lua
from bot.core.codec import decode_hash, limit_hash_fields
from contract import keys
from contract.events import (
    BattleStarted,
    Blocked,
    Commented,
    ConfigChanged,
    Consented,
    DemographicsSet,
    LossReasonGiven,
    ReplyReceived,
    StreamEvent,
    TurnStarted,
    TurnTranscribed,
    Unblocked,
    Voted,
    Withdrawn,
)
from contract.keys import AUDIO_TTL_S
from contract.records import fmt_time

R = TypeVar("R")

# Daily counters outlive their day a little, so a clock near midnight still finds them.
DAILY_TTL_S = 3 * 24 * 3600


@dataclass(frozen=True)
class Outcome:
    """What most scripts answer: a code, a detail and, where there is one, the record."""

    code: str
    detail: str
    record: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Sequence[bytes]) -> Outcome:
        return cls(_text(raw[0]), _text(raw[1]), decode_hash(raw[2:]))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _event_argv(event: StreamEvent) -> dict[str, EncodableT]:
    fields = event.to_fields()
    return {"event_type": fields["type"], "event_data": fields["data"]}


def _pairs(fields: Mapping[str, str]) -> list[EncodableT]:
    return [x for kv in fields.items() for x in kv]


class ScriptCall(ABC, Generic[R]):
    SCRIPT: ClassVar[lua.LuaScript]

    @abstractmethod
    def keys(self) -> dict[str, str]: ...

    @abstractmethod
    def argv(self) -> dict[str, EncodableT]: ...

    def rest(self) -> list[EncodableT]:
        return []

    @abstractmethod
    def parse(self, raw: Any) -> R: ...

    def layout(self) -> tuple[list[str], list[EncodableT]]:
        """KEYS and ARGV by position, as sent to Redis."""
        return self.SCRIPT.layout(self.keys(), self.argv(), self.rest())


class Scripts:
    """The scripts registered on one client."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._registered: dict[str, AsyncScript] = {}

    async def run(self, call: ScriptCall[R]) -> R:
        script = self._registered.get(call.SCRIPT.name)
        if script is None:
            script = self._redis.register_script(call.SCRIPT.source)
            self._registered[call.SCRIPT.name] = script
        script_keys, args = call.layout()
        return call.parse(await script(keys=script_keys, args=args))


# ------------------------------------------------------------------ battles


@dataclass(frozen=True, kw_only=True)
class CheckEligibility(ScriptCall[Outcome]):
    """Outcome code "ok" (detail: battles left before this one) or a refusal code (detail:
    retry_at, or "")."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.CHECK_ELIGIBILITY
    pseudonym: str
    day: str
    now: float
    day_end: float

    def keys(self) -> dict[str, str]:
        return {
            "config": keys.CONFIG,
            "roster": keys.ROSTER,
            "participant": keys.participant(self.pseudonym),
            "daily": keys.daily(self.pseudonym, self.day),
        }

    def argv(self) -> dict[str, EncodableT]:
        return {"now": fmt_time(self.now), "day_end": fmt_time(self.day_end)}

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


def battle_record(started: BattleStarted, day: str) -> dict[str, str]:
    """The fields a new battle's hash starts with, in their stored order."""
    data = started.data()
    return {
        "battle_id": started.battle_id,
        "participant": started.participant,
        "model_a": started.model_a,
        "model_b": started.model_b,
        "pair": keys.pair_field(started.model_a, started.model_b),
        "status": "queued",
        "strategy": data["strategy"],
        "created_at": data["created_at"],
        "day": day,
        "audio_ref": started.audio_ref,
        "audio_format": started.audio_format,
        "audio_seconds": data["audio_seconds"],
        "audio_bytes": data["audio_bytes"],
        **({"reply_mode": data["reply_mode"]} if "reply_mode" in data else {}),
    }


@dataclass(frozen=True, kw_only=True)
class StartBattle(ScriptCall[Outcome]):
    """Outcome "ok" (detail: battles left today), "roster_changed" (draw again) or a refusal.

    The battle starts at `started.created_at`; `ui` holds encoded `ui.<name>` fields.
    """

    SCRIPT: ClassVar[lua.LuaScript] = lua.START_BATTLE
    started: BattleStarted
    day: str
    day_end: float
    audio: bytes
    ui: Mapping[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, str]:
        return {**battle_record(self.started, self.day), **self.ui}

    def keys(self) -> dict[str, str]:
        p, battle_id = self.started.participant, self.started.battle_id
        return {
            "config": keys.CONFIG,
            "roster": keys.ROSTER,
            "participant": keys.participant(p),
            "daily": keys.daily(p, self.day),
            "battle": keys.battle(battle_id),
            "battles": keys.BATTLES,
            "open": keys.OPEN_BATTLES,
            "participant_battles": keys.participant_battles(p),
            "pair_battles": keys.PAIR_BATTLES,
            "status_counts": keys.STATUS_COUNTS,
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(p),
            "audio": keys.audio_key(battle_id),
        }

    def argv(self) -> dict[str, EncodableT]:
        s = self.started
        return {
            "now": fmt_time(s.created_at),
            "day_end": fmt_time(self.day_end),
            "model_a": s.model_a,
            "model_b": s.model_b,
            "pair": keys.pair_field(s.model_a, s.model_b),
            "battle_id": s.battle_id,
            "audio": self.audio,
            "audio_ttl": AUDIO_TTL_S,
            "daily_ttl": DAILY_TTL_S,
            **_event_argv(s),
        }

    def rest(self) -> list[EncodableT]:
        return _pairs(self.record())

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


@dataclass(frozen=True, kw_only=True)
class RecordReply(ScriptCall[Outcome]):
    """Outcome "changed" or "same" (a repeat) with the record, "missing", or "mismatch"
    (detail: the model the battle has on that side). `day` is the battle's day."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.RECORD_REPLY
    received: ReplyReceived
    reply_json: str
    day: str

    def keys(self) -> dict[str, str]:
        p = self.received.participant
        return {
            "battle": keys.battle(self.received.battle_id),
            "open": keys.OPEN_BATTLES,
            "pair_battles": keys.PAIR_BATTLES,
            "status_counts": keys.STATUS_COUNTS,
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(p),
            "daily": keys.daily(p, self.day),
        }

    def argv(self) -> dict[str, EncodableT]:
        result = self.received.result
        return {
            "side": result.side,
            "model_id": result.model_id,
            "reply_json": self.reply_json,
            "now": fmt_time(self.received.at),
            "ok": "1" if result.ok else "0",
            "flag": self.received.error_flag,
            "leak_flag": self.received.leak_flag,
            "battle_id": result.battle_id,
            "turn": result.turn,
            **_event_argv(self.received),
        }

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


@dataclass(frozen=True, kw_only=True)
class SetUi(ScriptCall[bool]):
    """False when the battle is gone."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.SET_UI
    battle_id: str
    fields: Mapping[str, str]  # encoded `ui.<name>` -> JSON

    def keys(self) -> dict[str, str]:
        return {"battle": keys.battle(self.battle_id)}

    def argv(self) -> dict[str, EncodableT]:
        return {}

    def rest(self) -> list[EncodableT]:
        if not self.fields:
            raise ValueError("set_ui needs at least one field")
        return _pairs(self.fields)

    def parse(self, raw: Any) -> bool:
        return bool(raw)


@dataclass(frozen=True, kw_only=True)
class ReadBattles(ScriptCall[list[Any]]):
    """A page of [battle id, score, [field, value, ...]] rows, oldest first."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.READ_BATTLES
    min_score: str | float  # "-inf" or a score (inclusive)
    offset: int
    count: int

    def keys(self) -> dict[str, str]:
        return {"battles": keys.BATTLES}

    def argv(self) -> dict[str, EncodableT]:
        return {
            "min_score": self.min_score,
            "offset": self.offset,
            "count": self.count,
            "battle_prefix": keys.BATTLE_PREFIX,
        }

    def parse(self, raw: Any) -> list[Any]:
        rows = json.loads(raw)
        if not isinstance(rows, list):
            raise ValueError(f"read_battles answered {type(rows).__name__}, not a list")
        return rows


@dataclass(frozen=True, kw_only=True)
class ContinueBattle(ScriptCall[Outcome]):
    """Outcome "ok" (detail: the new turn) with the record, or a refusal code (detail of
    "turn_limit": the limit)."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.CONTINUE_BATTLE
    started: TurnStarted
    audio: bytes
    default_max_turns: int
    ui: Mapping[str, str] = field(default_factory=dict)

    def keys(self) -> dict[str, str]:
        s = self.started
        return {
            "battle": keys.battle(s.battle_id),
            "participant": keys.participant(s.participant),
            "config": keys.CONFIG,
            "status_counts": keys.STATUS_COUNTS,
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(s.participant),
            "audio": keys.turn_audio_key(s.battle_id, s.turn),
        }

    def argv(self) -> dict[str, EncodableT]:
        s = self.started
        data = s.data()
        return {
            "participant": s.participant,
            "turn": s.turn,
            "now": fmt_time(s.at),
            "audio_ref": s.audio_ref,
            "audio_format": s.audio_format,
            "audio_seconds": data["audio_seconds"],
            "audio_bytes": data["audio_bytes"],
            "audio": self.audio,
            "audio_ttl": AUDIO_TTL_S,
            "default_max_turns": self.default_max_turns,
            **_event_argv(s),
        }

    def rest(self) -> list[EncodableT]:
        return _pairs(self.ui)

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


@dataclass(frozen=True, kw_only=True)
class SetTranscript(ScriptCall[bool]):
    """False when the battle is gone."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.SET_TRANSCRIPT
    transcribed: TurnTranscribed

    def keys(self) -> dict[str, str]:
        t = self.transcribed
        return {
            "battle": keys.battle(t.battle_id),
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(t.participant),
        }

    def argv(self) -> dict[str, EncodableT]:
        t = self.transcribed
        return {
            "field": f"turn{t.turn}.transcript",
            "text": t.text,
            **_event_argv(t),
        }

    def parse(self, raw: Any) -> bool:
        return _text(raw) == "ok"


@dataclass(frozen=True, kw_only=True)
class SetLossReason(ScriptCall[Outcome]):
    """Outcome "ok" with the record, or a refusal code."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.LOSS_REASON
    given: LossReasonGiven

    def keys(self) -> dict[str, str]:
        g = self.given
        return {
            "battle": keys.battle(g.battle_id),
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(g.participant),
        }

    def argv(self) -> dict[str, EncodableT]:
        g = self.given
        return {"participant": g.participant, "reason": g.reason, **_event_argv(g)}

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


@dataclass(frozen=True, kw_only=True)
class AwaitReason(ScriptCall[str]):
    """ "ok" or a refusal code."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.AWAIT_REASON
    participant: str
    battle_id: str
    value: str  # "battle_id|place"
    ttl_s: int

    def keys(self) -> dict[str, str]:
        return {
            "battle": keys.battle(self.battle_id),
            "pending": keys.reason_pending(self.participant),
        }

    def argv(self) -> dict[str, EncodableT]:
        return {"participant": self.participant, "value": self.value, "ttl": self.ttl_s}

    def parse(self, raw: Any) -> str:
        return _text(raw)


@dataclass(frozen=True, kw_only=True)
class TakeReason(ScriptCall[str]):
    """ "ok", "expired" (no longer awaited) or "no_such_battle"."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.TAKE_REASON
    participant: str
    battle_id: str
    value: str
    audio: bytes

    def keys(self) -> dict[str, str]:
        return {
            "battle": keys.battle(self.battle_id),
            "pending": keys.reason_pending(self.participant),
            "audio": keys.reason_audio_key(self.battle_id),
        }

    def argv(self) -> dict[str, EncodableT]:
        return {"value": self.value, "audio": self.audio, "audio_ttl": AUDIO_TTL_S}

    def parse(self, raw: Any) -> str:
        return _text(raw)


# ------------------------------------------------------------------ votes and comments


@dataclass(frozen=True, kw_only=True)
class Vote(ScriptCall[Outcome]):
    """Outcome "ok" (detail: battles left today) with the record, or a refusal code."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.VOTE
    voted: Voted
    day: str  # the voter's UTC day now, for the battles left today

    def keys(self) -> dict[str, str]:
        p = self.voted.participant
        return {
            "battle": keys.battle(self.voted.battle_id),
            "open": keys.OPEN_BATTLES,
            "pair_votes": keys.PAIR_VOTES,
            "pair_outcomes": keys.PAIR_OUTCOMES,
            "status_counts": keys.STATUS_COUNTS,
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(p),
            "daily": keys.daily(p, self.day),
            "config": keys.CONFIG,
        }

    def argv(self) -> dict[str, EncodableT]:
        return {
            "participant": self.voted.participant,
            "winner": self.voted.winner.value,
            "now": fmt_time(self.voted.at),
            "flags": ",".join(self.voted.flags),
            "battle_id": self.voted.battle_id,
            **_event_argv(self.voted),
        }

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


@dataclass(frozen=True, kw_only=True)
class AddComment(ScriptCall[Outcome]):
    """Outcome "ok" with the record, or a refusal code (too_many_comments, ...)."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.COMMENT
    commented: Commented
    comment_json: str
    max_comments: int

    def keys(self) -> dict[str, str]:
        return {
            "battle": keys.battle(self.commented.battle_id),
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(self.commented.participant),
        }

    def argv(self) -> dict[str, EncodableT]:
        return {
            "participant": self.commented.participant,
            "comment_json": self.comment_json,
            "max_comments": self.max_comments,
            **_event_argv(self.commented),
        }

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


# ------------------------------------------------------------------ participants


@dataclass(frozen=True, kw_only=True)
class UpdateParticipant(ScriptCall[Outcome]):
    """Outcome "changed" or "same" (the guard held) with the record, or "withdrawn".

    Creates the record (joined at the event's time) when missing. `guard`: when that field
    already holds that value, nothing is written.
    """

    SCRIPT: ClassVar[lua.LuaScript] = lua.UPDATE_PARTICIPANT
    event: Consented | DemographicsSet | Blocked | Unblocked
    fields: Mapping[str, str]
    guard: tuple[str, str] | None = None

    def keys(self) -> dict[str, str]:
        p = self.event.participant
        return {
            "participant": keys.participant(p),
            "participants": keys.PARTICIPANTS,
            "events": keys.EVENTS,
            "participant_events": keys.participant_events(p),
        }

    def argv(self) -> dict[str, EncodableT]:
        guard_field, guard_value = self.guard or ("", "")
        return {
            "pseudonym": self.event.participant,
            "now": fmt_time(self.event.at),
            "guard_field": guard_field,
            "guard_value": guard_value,
            **_event_argv(self.event),
        }

    def rest(self) -> list[EncodableT]:
        return _pairs(self.fields)

    def parse(self, raw: Any) -> Outcome:
        return Outcome.parse(raw)


@dataclass(frozen=True, kw_only=True)
class Withdraw(ScriptCall[set[str]]):
    """The ids of the participant's battles (empty when already withdrawn)."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.WITHDRAW
    withdrawn: Withdrawn

    def keys(self) -> dict[str, str]:
        p = self.withdrawn.participant
        return {
            "participant": keys.participant(p),
            "participant_battles": keys.participant_battles(p),
            "participant_events": keys.participant_events(p),
            "battles": keys.BATTLES,
            "open": keys.OPEN_BATTLES,
            "pair_battles": keys.PAIR_BATTLES,
            "pair_votes": keys.PAIR_VOTES,
            "pair_outcomes": keys.PAIR_OUTCOMES,
            "status_counts": keys.STATUS_COUNTS,
            "events": keys.EVENTS,
            "participants": keys.PARTICIPANTS,
            "reason_pending": keys.reason_pending(p),
        }

    def argv(self) -> dict[str, EncodableT]:
        p = self.withdrawn.participant
        return {
            "pseudonym": p,
            "now": fmt_time(self.withdrawn.at),
            "battle_prefix": keys.BATTLE_PREFIX,
            "audio_prefix": keys.AUDIO_PREFIX,
            "daily_prefix": keys.daily_prefix(p),
            **_event_argv(self.withdrawn),
        }

    def parse(self, raw: Any) -> set[str]:
        return {_text(battle_id) for battle_id in raw[1:]}


# ------------------------------------------------------------------ study config


def config_fields(change: ConfigChanged) -> dict[str, str]:
    """The config hash fields a change sets (limits typed by contract.records.Limits)."""
    out: dict[str, str] = {}
    if change.state is not None:
        out["state"] = change.state.value
    if change.strategy is not None:
        out["strategy"] = change.strategy.value
    if change.limits is not None:
        out.update(limit_hash_fields(change.limits))
    if change.replies is not None:
        out["replies"] = change.replies.value
    return out


@dataclass(frozen=True, kw_only=True)
class InitConfig(ScriptCall[bool]):
    """The study's first config, from an event with every part set; False if already there."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.INIT_CONFIG
    initial: ConfigChanged

    def __post_init__(self) -> None:
        c = self.initial
        if c.state is None or c.strategy is None or c.roster is None or c.limits is None:
            raise ValueError(f"the first config must set state, strategy, roster, limits: {c}")

    def keys(self) -> dict[str, str]:
        return {"config": keys.CONFIG, "roster": keys.ROSTER, "events": keys.EVENTS}

    def argv(self) -> dict[str, EncodableT]:
        return {
            "now": fmt_time(self.initial.at),
            "n_fields": len(config_fields(self.initial)),
            **_event_argv(self.initial),
        }

    def rest(self) -> list[EncodableT]:
        return [*_pairs(config_fields(self.initial)), *(self.initial.roster or ())]

    def parse(self, raw: Any) -> bool:
        return bool(raw)


@dataclass(frozen=True, kw_only=True)
class ChangeConfig(ScriptCall[bool]):
    """A moderator's change: the parts the event sets, and the roster when it names one."""

    SCRIPT: ClassVar[lua.LuaScript] = lua.CHANGE_CONFIG
    change: ConfigChanged

    def keys(self) -> dict[str, str]:
        return {"config": keys.CONFIG, "roster": keys.ROSTER, "events": keys.EVENTS}

    def argv(self) -> dict[str, EncodableT]:
        return {
            "n_fields": len(config_fields(self.change)),
            "replace_roster": "0" if self.change.roster is None else "1",
            **_event_argv(self.change),
        }

    def rest(self) -> list[EncodableT]:
        return [*_pairs(config_fields(self.change)), *(self.change.roster or ())]

    def parse(self, raw: Any) -> bool:
        return bool(raw)
