"""What the study service answers: plain values that the Discord layer renders.

Every use case returns one of these instead of raising for a rule's "no", so a caller sees each
outcome in the return type. Storage failures (RedisError) still raise: they are not answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.dispatch import WaitingJob, WorkerInfo
from contract.pairing import NeighbourGap
from contract.records import Battle, Limits, Participant, Refused, StudyConfig


@dataclass(frozen=True)
class Refusal:
    """A study rule said no (the core's `Refused`); `message` is polite and shown as is."""

    code: str
    message: str
    retry_at: float | None = None

    @classmethod
    def of(cls, refused: Refused) -> Refusal:
        return cls(refused.code, refused.message, refused.retry_at)


# --- joining ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinStart:
    """What `/join` shows: the consent form of `version`, or (already agreed to it) the
    instructions."""

    version: str
    needs_consent: bool


@dataclass(frozen=True)
class ConsentChanged:
    """The form agreed to is no longer the current one (`current`)."""

    current: str


@dataclass(frozen=True)
class Agreed:
    participant: Participant


@dataclass(frozen=True)
class Withdrawn:
    """The core deleted the participant's study data. `thread_id` is their private thread
    (already forgotten here), whose recordings the Discord layer removes; None when they had
    none."""

    pseudonym: str
    thread_id: int | None


# --- clips -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipMeta:
    """What a message says about one attachment, before anything is downloaded."""

    filename: str
    content_type: str | None
    size: int
    voice_message: bool = False


@dataclass(frozen=True)
class TextOnly:
    """A message without attachments; `joined` says which hint fits."""

    joined: bool


@dataclass(frozen=True)
class NotAudio:
    filename: str


@dataclass(frozen=True)
class ConsentOutdated:
    """The participant agreed to an older consent version than `current`."""

    current: str


@dataclass(frozen=True)
class TooBig:
    size: int
    limit: int


@dataclass(frozen=True)
class Admitted:
    """A clip that may be downloaded: the attachment chosen, the limits it is held to and the
    format (file suffix) the core will store it as."""

    user_id: int
    clip: ClipMeta
    audio_format: str
    limits: Limits
    place: str | None = None  # the channel id the message came in (DM or thread)
    continues: str | None = None  # the unvoted battle this clip is the next turn of
    reason_for: str | None = None  # the voted battle this clip is the spoken reason for


@dataclass(frozen=True)
class BadAudio:
    """The clip cannot be read; `message` (from `contract.audio.AudioError`) is shown as is."""

    reason: str
    message: str


@dataclass(frozen=True)
class UnknownLength:
    """Neither the container nor the packets tell how long the clip is."""


@dataclass(frozen=True)
class TooLong:
    seconds: float
    limit: float


@dataclass(frozen=True)
class Clip:
    """A downloaded, probed clip within the limits, ready to start a battle."""

    admitted: Admitted
    data: bytes = field(repr=False)
    seconds: float


@dataclass(frozen=True)
class NotDispatched:
    """The battle started but its jobs could not be enqueued."""

    battle_id: str


@dataclass(frozen=True)
class Started:
    """The battle started and both jobs are queued; `position` is the number of jobs ahead of
    the later one (None once both started)."""

    battle: Battle
    job_ids: list[str]
    position: int | None


@dataclass(frozen=True)
class StillAnswering:
    """The models are still answering the previous turn in this place: wait, then speak."""

    battle_id: str


@dataclass(frozen=True)
class ReasonTaken:
    """The voice reason is with the study's ASR; it becomes a comment once transcribed."""

    battle_id: str
    job_id: str


# --- battles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reveal:
    """A voted battle with the models' display names by side and the rounds left today."""

    battle: Battle
    names: dict[str, str]
    remaining: int


@dataclass(frozen=True)
class NoSuchBattle:
    battle_id: str


@dataclass(frozen=True)
class NotYourBattle:
    battle_id: str


@dataclass(frozen=True)
class CommentForm:
    """The comment form may open, for at most `max_chars` characters."""

    battle_id: str
    max_chars: int


@dataclass(frozen=True)
class EmptyComment:
    pass


@dataclass(frozen=True)
class CommentTooLong:
    length: int
    limit: int


@dataclass(frozen=True)
class LossReasonSaved:
    battle: Battle
    reason: str


@dataclass(frozen=True)
class AwaitingVoiceReason:
    """The participant's next voice message in `place` is the reason for this vote."""

    battle_id: str
    place: str
    minutes: int


@dataclass(frozen=True)
class CommentSaved:
    battle: Battle


# --- moderation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesignView:
    """The study's configuration with every known model's display name."""

    config: StudyConfig
    names: dict[str, str]
    known: list[str]


@dataclass(frozen=True)
class StatusReport:
    """`/study status`: configuration, battle summary, queues and workers."""

    design: DesignView
    summary: dict[str, Any]
    depths: dict[str, int]
    workers: list[WorkerInfo]
    oldest: WaitingJob | None
    # Adjacent models of the running ranking and the votes each pair still needs to separate.
    gaps: list[NeighbourGap] = field(default_factory=list)
    # Roster models no live worker serves: their sides fail after the sweeper's short wait.
    unserved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Exported:
    path: Path
    rows: int
    size: int
    voted: int = 0
    participants: int = 0
    # Flag name -> battles carrying it (a battle may carry several).
    flags: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ParticipantData:
    pseudonym: str
    data: dict[str, Any]


@dataclass(frozen=True)
class StateSet:
    """`/study open|pause|close`: the configuration after it; `changed` is False when the
    study already was in that state (nothing was written)."""

    config: StudyConfig
    changed: bool
    # When opening: roster models no live worker serves (the moderator is told).
    unserved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModerationDone:
    """A moderator's change to one participant went through."""

    pseudonym: str
