"""The events of the audit stream `parley:events` (keys.EVENTS), one typed definition each.

Every entry of the stream has two fields: `type` (the event's `TYPE`) and `data` (JSON, always
with `at`, the writer's clock). The study core builds these dataclasses, its Lua call wrappers
hand `to_fields()` to the script that writes the change, and replay reads them back with
`read_event`. The JSON is exactly what earlier versions wrote (same names, order and escaping),
so stored streams read and replay unchanged; see docs/data-model.md ("The event stream").
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from contract.protocol import ResultMessage
from contract.records import (
    Comment,
    Demographics,
    Reply,
    ReplyMode,
    Strategy,
    StudyState,
    Winner,
    fmt_time,
)


class StreamEvent(ABC):
    """One entry of the event stream. Subclasses are frozen keyword-only dataclasses."""

    TYPE: ClassVar[str]
    # Older writers escaped non-ASCII in some events and not in others; kept, so that an event
    # written now is byte-identical to one written before.
    ENSURE_ASCII: ClassVar[bool] = True

    at: float

    @abstractmethod
    def data(self) -> dict[str, Any]:
        """The JSON-able payload, in the stored field order."""

    @classmethod
    @abstractmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """The event from its decoded payload."""

    def data_json(self) -> str:
        return json.dumps(self.data(), ensure_ascii=self.ENSURE_ASCII)

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields, for XADD (Lua scripts receive the same two values)."""
        return {"type": self.TYPE, "data": self.data_json()}

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes] | Mapping[str, str]) -> Self:
        """A stream entry as read by XRANGE (bytes or text); must be of this class's type."""
        event = read_event(fields)
        if not isinstance(event, cls):
            raise ValueError(f"expected a {cls.__name__} event, got a {event.TYPE!r} event")
        return event


# ------------------------------------------------------------------ about one participant


@dataclass(frozen=True, kw_only=True)
class Consented(StreamEvent):
    TYPE: ClassVar[str] = "consent"
    participant: str
    at: float
    version: str

    def data(self) -> dict[str, Any]:
        return {"participant": self.participant, "at": self.at, "version": self.version}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(participant=data["participant"], at=data["at"], version=data["version"])


@dataclass(frozen=True, kw_only=True)
class DemographicsSet(StreamEvent):
    TYPE: ClassVar[str] = "demographics"
    participant: str
    at: float
    demographics: Demographics

    def data(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "at": self.at,
            "demographics": dataclasses.asdict(self.demographics),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            participant=data["participant"],
            at=data["at"],
            demographics=Demographics(**data["demographics"]),
        )


@dataclass(frozen=True, kw_only=True)
class Blocked(StreamEvent):
    TYPE: ClassVar[str] = "blocked"
    participant: str
    at: float
    reason: str
    by: str  # the moderator's pseudonym

    def data(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "at": self.at,
            "reason": self.reason,
            "by": self.by,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            participant=data["participant"], at=data["at"], reason=data["reason"], by=data["by"]
        )


@dataclass(frozen=True, kw_only=True)
class Unblocked(StreamEvent):
    TYPE: ClassVar[str] = "unblocked"
    participant: str
    at: float
    by: str

    def data(self) -> dict[str, Any]:
        return {"participant": self.participant, "at": self.at, "by": self.by}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(participant=data["participant"], at=data["at"], by=data["by"])


@dataclass(frozen=True, kw_only=True)
class Withdrawn(StreamEvent):
    """The only event about a participant left after they withdraw."""

    TYPE: ClassVar[str] = "withdrawn"
    participant: str
    at: float

    def data(self) -> dict[str, Any]:
        return {"participant": self.participant, "at": self.at}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(participant=data["participant"], at=data["at"])


# ------------------------------------------------------------------ about the study


@dataclass(frozen=True, kw_only=True)
class ConfigChanged(StreamEvent):
    """A change of the study's configuration; only the parts that changed are set.

    The study's first start writes one with all four parts, by "parley". `limits` holds the
    values as the moderator gave them (a whole number stays whole in the JSON).
    """

    TYPE: ClassVar[str] = "config"
    by: str
    at: float
    state: StudyState | None = None
    strategy: Strategy | None = None
    roster: tuple[str, ...] | None = None
    limits: dict[str, int | float] | None = None
    replies: ReplyMode | None = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"by": self.by, "at": self.at}
        if self.state is not None:
            out["state"] = self.state.value
        if self.strategy is not None:
            out["strategy"] = self.strategy.value
        if self.roster is not None:
            out["roster"] = list(self.roster)
        if self.limits is not None:
            out["limits"] = dict(self.limits)
        if self.replies is not None:
            out["replies"] = self.replies.value
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        state, strategy = data.get("state"), data.get("strategy")
        roster, limits = data.get("roster"), data.get("limits")
        return cls(
            by=data["by"],
            at=data["at"],
            state=None if state is None else StudyState(state),
            strategy=None if strategy is None else Strategy(strategy),
            roster=None if roster is None else tuple(roster),
            limits=None if limits is None else dict(limits),
            replies=None if data.get("replies") is None else ReplyMode(data["replies"]),
        )


# ------------------------------------------------------------------ about one battle


@dataclass(frozen=True, kw_only=True)
class BattleStarted(StreamEvent):
    """A battle's fixed fields. `created_at` is `at` as stored in the record (microseconds)."""

    TYPE: ClassVar[str] = "battle_started"
    battle_id: str
    participant: str
    model_a: str
    model_b: str
    strategy: Strategy
    created_at: float
    audio_ref: str
    audio_format: str
    audio_seconds: float
    audio_bytes: int
    at: float
    reply_mode: ReplyMode = ReplyMode.TEXT

    def data(self) -> dict[str, Any]:
        # The record's text forms, as they are in the battle hash.
        out: dict[str, Any] = {
            "battle_id": self.battle_id,
            "participant": self.participant,
            "model_a": self.model_a,
            "model_b": self.model_b,
            "strategy": self.strategy.value,
            "created_at": fmt_time(self.created_at),
            "audio_ref": self.audio_ref,
            "audio_format": self.audio_format,
            "audio_seconds": repr(float(self.audio_seconds)),
            "audio_bytes": str(int(self.audio_bytes)),
            "at": self.at,
        }
        # Written only for spoken replies, so a text battle's event reads as before.
        if self.reply_mode is not ReplyMode.TEXT:
            out["reply_mode"] = self.reply_mode.value
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            battle_id=data["battle_id"],
            participant=data["participant"],
            model_a=data["model_a"],
            model_b=data["model_b"],
            strategy=Strategy(data["strategy"]),
            created_at=float(data["created_at"]),
            audio_ref=data["audio_ref"],
            audio_format=data["audio_format"],
            audio_seconds=float(data["audio_seconds"]),
            audio_bytes=int(data["audio_bytes"]),
            at=data["at"],
            reply_mode=ReplyMode(data.get("reply_mode", ReplyMode.TEXT)),
        )


@dataclass(frozen=True, kw_only=True)
class ReplyReceived(StreamEvent):
    """A worker's whole result for one side, first delivery only (repeats write no event)."""

    TYPE: ClassVar[str] = "reply"
    ENSURE_ASCII: ClassVar[bool] = False
    result: ResultMessage
    participant: str
    at: float
    # Models of the roster the reply named (its text is stored masked): the battle is flagged
    # `identity_leak`. Written only when non-empty, so older events read the same.
    named: tuple[str, ...] = ()

    @property
    def battle_id(self) -> str:
        return self.result.battle_id

    @property
    def leak_flag(self) -> str:
        """`identity_leak` when the reply named a model, else ""."""
        return IDENTITY_LEAK_FLAG if self.named else ""

    def reply(self) -> Reply:
        """The reply as kept in the battle record (`reply_a` / `reply_b`)."""
        r = self.result
        return Reply(
            side=r.side,
            model_id=r.model_id,
            text=r.reply,
            transcript=r.transcript,
            timings={k: float(v) for k, v in r.timings.items()},
            error=r.error,
            received_at=self.at,
            audio_seconds=r.audio_seconds,
            audio_format=r.audio_format,
        )

    @property
    def error_flag(self) -> str:
        """The battle flag a failed reply adds, e.g. `error_b:timeout`."""
        return f"error_{self.result.side}:{self.result.error_kind or 'unknown'}"

    def data(self) -> dict[str, Any]:
        result = self.result.as_dict()
        if result.get("turn") == 1:
            # A first turn's event stays byte-identical to one written before battles had turns.
            del result["turn"]
        data = {**result, "participant": self.participant, "at": self.at}
        if self.named:
            data["named"] = list(self.named)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        rest = {k: v for k, v in data.items() if k not in ("participant", "at", "named")}
        unknown = sorted(set(rest) - _RESULT_FIELDS)
        if unknown:
            raise ValueError(f"reply event has fields a ResultMessage lacks: {unknown}")
        return cls(
            result=ResultMessage(**rest),
            participant=data["participant"],
            at=data["at"],
            named=tuple(data.get("named", ())),
        )


IDENTITY_LEAK_FLAG = "identity_leak"  # the same name as bot.core.quality.IDENTITY_LEAK
_RESULT_FIELDS = frozenset(f.name for f in dataclasses.fields(ResultMessage))


@dataclass(frozen=True, kw_only=True)
class Voted(StreamEvent):
    """A vote; the reveal is the same write (`revealed_at` = `voted_at`)."""

    TYPE: ClassVar[str] = "vote"
    battle_id: str
    participant: str
    winner: Winner
    at: float
    # Vote-quality flags the vote adds to the battle (e.g. `fast_vote`); written when non-empty.
    flags: tuple[str, ...] = ()

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "battle_id": self.battle_id,
            "participant": self.participant,
            "winner": self.winner.value,
            "at": self.at,
        }
        if self.flags:
            data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            battle_id=data["battle_id"],
            participant=data["participant"],
            winner=Winner(data["winner"]),
            at=data["at"],
            flags=tuple(data.get("flags", ())),
        )


@dataclass(frozen=True, kw_only=True)
class Commented(StreamEvent):
    TYPE: ClassVar[str] = "comment"
    ENSURE_ASCII: ClassVar[bool] = False
    battle_id: str
    participant: str
    text: str
    at: float
    source: str = "text"  # "voice": a voice reason, as the study's ASR transcribed it

    def comment(self) -> Comment:
        """The comment as kept in the battle record (`comment:<n>`)."""
        return Comment(text=self.text, at=self.at, source=self.source)

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "battle_id": self.battle_id,
            "participant": self.participant,
            "text": self.text,
            "at": self.at,
        }
        if self.source != "text":  # a typed comment's event stays as it always was
            out["source"] = self.source
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            battle_id=data["battle_id"],
            participant=data["participant"],
            text=data["text"],
            at=data["at"],
            source=data.get("source", "text"),
        )


@dataclass(frozen=True, kw_only=True)
class TurnStarted(StreamEvent):
    """The participant's next voice message continued an unvoted battle: turn `turn` (>= 2)."""

    TYPE: ClassVar[str] = "turn_started"
    battle_id: str
    participant: str
    turn: int
    audio_ref: str
    audio_format: str
    audio_seconds: float
    audio_bytes: int
    at: float

    def data(self) -> dict[str, Any]:
        return {
            "battle_id": self.battle_id,
            "participant": self.participant,
            "turn": self.turn,
            "audio_ref": self.audio_ref,
            "audio_format": self.audio_format,
            "audio_seconds": repr(float(self.audio_seconds)),
            "audio_bytes": str(int(self.audio_bytes)),
            "at": self.at,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            battle_id=data["battle_id"],
            participant=data["participant"],
            turn=int(data["turn"]),
            audio_ref=data["audio_ref"],
            audio_format=data["audio_format"],
            audio_seconds=float(data["audio_seconds"]),
            audio_bytes=int(data["audio_bytes"]),
            at=data["at"],
        )


@dataclass(frozen=True, kw_only=True)
class TurnTranscribed(StreamEvent):
    """The study's ASR transcribed the participant's clip of one turn."""

    TYPE: ClassVar[str] = "turn_transcribed"
    ENSURE_ASCII: ClassVar[bool] = False
    battle_id: str
    participant: str
    turn: int
    text: str
    at: float

    def data(self) -> dict[str, Any]:
        return {
            "battle_id": self.battle_id,
            "participant": self.participant,
            "turn": self.turn,
            "text": self.text,
            "at": self.at,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            battle_id=data["battle_id"],
            participant=data["participant"],
            turn=int(data["turn"]),
            text=data["text"],
            at=data["at"],
        )


@dataclass(frozen=True, kw_only=True)
class LossReasonGiven(StreamEvent):
    """After the vote: why the loser lost (contract.records.LOSS_REASONS)."""

    TYPE: ClassVar[str] = "loss_reason"
    battle_id: str
    participant: str
    reason: str
    at: float

    def data(self) -> dict[str, Any]:
        return {
            "battle_id": self.battle_id,
            "participant": self.participant,
            "reason": self.reason,
            "at": self.at,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            battle_id=data["battle_id"],
            participant=data["participant"],
            reason=data["reason"],
            at=data["at"],
        )


Event = (
    Consented
    | DemographicsSet
    | Blocked
    | Unblocked
    | Withdrawn
    | ConfigChanged
    | BattleStarted
    | ReplyReceived
    | Voted
    | Commented
    | TurnStarted
    | TurnTranscribed
    | LossReasonGiven
)
# Events that change a participant's record (replay_participants reads these).
ParticipantEvent = Consented | DemographicsSet | Blocked | Unblocked | Withdrawn

EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        Consented,
        DemographicsSet,
        Blocked,
        Unblocked,
        Withdrawn,
        ConfigChanged,
        BattleStarted,
        ReplyReceived,
        Voted,
        Commented,
        TurnStarted,
        TurnTranscribed,
        LossReasonGiven,
    )
}


def read_event(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> Event:
    """One stream entry's fields (bytes as XRANGE returns them, or text) as its typed event."""
    text = {_text(k): _text(v) for k, v in fields.items()}
    kind = text.get("type")
    cls = EVENT_TYPES.get(kind or "")
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}; known: {', '.join(EVENT_TYPES)}")
    if "data" not in text:
        raise ValueError(f"{kind!r} event without a 'data' field")
    data = json.loads(text["data"])
    if not isinstance(data, dict):
        raise ValueError(f"{kind!r} event data is not a JSON object: {type(data).__name__}")
    try:
        return cls.from_data(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"cannot read a {kind!r} event ({exc!r}); its fields: {sorted(data)}"
        ) from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
