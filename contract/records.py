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
    # Turns per battle: the participant's next voice message in the same place continues an
    # unvoted battle until it has this many turns (1: every message starts a new battle).
    max_turns: int = 4
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
    source: str = "text"  # "text" (the comment form) or "voice" (a transcribed voice reason)


# Why the loser lost, as the optional select menu after a vote asks it (Talk Arena / Voice
# Showdown's categories).
LOSS_REASONS = ("understanding", "content", "speech_quality", "too_slow", "other")
# What a model's history holds for a user turn no transcript exists for (yet).
UNTRANSCRIBED = "(a voice message)"


@dataclass(frozen=True)
class Turn:
    """One turn of a battle: the participant's clip and both sides' replies to it.

    Turn 1 is the battle's own clip (`Battle.audio_ref`); the last turn's replies are
    `Battle.replies` as well. `transcript` is the study ASR's text of the clip, where it ran.
    """

    number: int
    audio_ref: str | None
    audio_seconds: float
    started_at: float
    replies: dict[str, Reply] = field(default_factory=dict)
    answered_at: float | None = None
    transcript: str | None = None

    def user_text(self) -> str:
        """The participant's words: the study ASR's transcript, else a side's own ASR text."""
        if self.transcript:
            return self.transcript
        for side in ("a", "b"):
            reply = self.replies.get(side)
            if reply is not None and reply.transcript:
                return reply.transcript
        return UNTRANSCRIBED


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

    turn: int = 1  # turns so far; the last one is the one being answered or voted
    turns: tuple[Turn, ...] = ()  # every turn, oldest first (empty only for hand-built battles)
    loss_reason: str | None = None  # one of LOSS_REASONS, picked after the vote

    def conversation(self, side: str, *, upto: int | None = None) -> list[dict[str, str]]:
        """One side's conversation in FastChat's shape, `[{"role", "content"}, ...]`: each
        turn's user words and this side's own reply (never the other side's). `upto`: only the
        turns before that number (a model's history for turn `upto`)."""
        if side not in ("a", "b"):
            raise ValueError(f"side must be 'a' or 'b', got {side!r}")
        out: list[dict[str, str]] = []
        for turn in self.turns:
            if upto is not None and turn.number >= upto:
                break
            out.append({"role": "user", "content": turn.user_text()})
            reply = turn.replies.get(side)
            if reply is not None and reply.text is not None:
                out.append({"role": "assistant", "content": reply.text})
        return out

    def history(self, side: str) -> list[dict[str, str]]:
        """What the side's model receives with the current turn: the turns before it."""
        return self.conversation(side, upto=self.turn)


class Refused(Exception):
    """A rule refused the request. `message` is polite and safe to show the user as is."""

    def __init__(self, code: str, message: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_at = retry_at  # unix time when trying again can succeed, where known


class StorageNotDurable(RuntimeError):
    """Redis would lose votes on a restart (no AOF, or appendfsync no)."""
