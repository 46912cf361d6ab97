"""Plain data of a study: enums, participants, battles, limits, refusals. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


def fmt_time(value: float) -> str:
    """Times are stored as text with microseconds; Lua compares them as doubles."""
    return f"{value:.6f}"


class StudyState(StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


class ParticipantStatus(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    BLOCKED = "blocked"


class BattleStatus(StrEnum):
    QUEUED = "queued"  # waiting for one or both replies
    ANSWERED = "answered"  # both replies in; can be voted
    FAILED = "failed"  # a model failed; takes no vote
    VOTED = "voted"


class Winner(StrEnum):
    """Vote values, as in the Chatbot Arena (FastChat) battle format."""

    MODEL_A = "model_a"
    MODEL_B = "model_b"
    TIE = "tie"
    BOTH_BAD = "tie (bothbad)"


class ReplyMode(StrEnum):
    """How replies reach the participant (`/study replies`)."""

    TEXT = "text"  # written replies only (Talk Arena)
    SPEECH = "speech"  # spoken replies only: the participant listens before voting
    BOTH = "both"  # spoken replies with their text

    @property
    def spoken(self) -> bool:
        return self is not ReplyMode.TEXT


class Strategy(StrEnum):
    UNIFORM = "uniform"  # every unordered pair of the roster equally likely
    BALANCED = "balanced"  # least-battled pairs first, until each reaches the target
    ACTIVE = "active"  # pairs whose order is least certain, from the votes so far


@dataclass(frozen=True)
class Limits:
    daily_quota: int = 20  # battles per participant per UTC day
    min_seconds_between: float = 20.0  # between two battles of one participant
    audio_max_seconds: float = 60.0
    audio_max_bytes: int = 8_000_000
    comment_max_chars: int = 1000
    pair_target: int = 50  # battles per pair the balanced strategy aims for
    # A vote sooner after both replies were shown than the time to read them at this speed
    # (characters per second; 50 is skimming pace) is flagged `fast_vote`; 0 turns it off.
    fast_vote_chars_per_second: float = 50.0
    # Spoken replies: sooner than this share of their summed durations is a fast vote.
    fast_vote_listen_share: float = 0.5
    # Never less than this (seconds), however short the replies.
    fast_vote_floor_s: float = 1.0


@dataclass(frozen=True)
class StudyConfig:
    state: StudyState
    roster: tuple[str, ...]
    strategy: Strategy
    limits: Limits
    replies: ReplyMode = ReplyMode.TEXT


@dataclass(frozen=True)
class Demographics:
    age_band: str | None = None
    gender: str | None = None
    first_language: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class Participant:
    pseudonym: str
    status: ParticipantStatus
    consent_version: str | None
    consented_at: float | None
    demographics: Demographics
    joined_at: float
    withdrawn_at: float | None = None
    blocked_reason: str | None = None

    @property
    def has_consented(self) -> bool:
        return self.consent_version is not None


@dataclass(frozen=True)
class Reply:
    side: str  # "a" | "b"
    model_id: str
    text: str | None
    transcript: str | None
    timings: dict[str, float]
    error: str | None
    received_at: float
    # The spoken reply (reply modes speech/both): its length and the container it is kept in.
    audio_seconds: float | None = None
    audio_format: str | None = None


@dataclass(frozen=True)
class Comment:
    text: str
    at: float


@dataclass(frozen=True)
class Battle:
    battle_id: str  # random, opaque; never derived from model ids
    participant: str  # pseudonym
    model_a: str
    model_b: str
    status: BattleStatus
    strategy: Strategy
    created_at: float
    audio_ref: str | None  # path relative to the data dir; None once withdrawn
    audio_seconds: float
    replies: dict[str, Reply] = field(default_factory=dict)  # keyed "a" / "b"
    answered_at: float | None = None
    winner: Winner | None = None
    voted_at: float | None = None
    revealed_at: float | None = None
    vote_delay_s: float | None = None  # answered_at -> voted_at
    comments: tuple[Comment, ...] = ()
    flags: tuple[str, ...] = ()
    # Opaque references the Discord layer keeps with the battle (channel id, message id, ...).
    ui: dict[str, Any] = field(default_factory=dict)
    reply_mode: ReplyMode = ReplyMode.TEXT  # fixed when the battle starts

    def reply_audio_seconds(self, side: str) -> float | None:
        """How long the spoken reply of one side lasts; None in text mode or before it came."""
        reply = self.replies.get(side)
        return None if reply is None else reply.audio_seconds


class Refused(Exception):
    """A rule refused the request. `message` is polite and safe to show the user as is."""

    def __init__(self, code: str, message: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_at = retry_at  # unix time when trying again can succeed, where known


class StorageNotDurable(RuntimeError):
    """Redis would lose votes on a restart (no AOF, or appendfsync no)."""
