"""The contract between the bot and the workers: queue names, job payloads, result messages.

Plain data only, no heavy imports: the bot imports this module without torch or transformers.

Flow: the bot stores the participant's audio bytes under `audio_key(battle_id)` in Redis (so a
worker on another host needs no shared disk), then enqueues `JOB_FUNCTION` with one `JobRequest`
dict on the RQ queue `queue_name(model_id)`, once per side. A worker publishes each finished job as
a `ResultMessage` on the stream `RESULTS_STREAM`, which the bot reads with the consumer group
`RESULTS_GROUP` (at-least-once: the bot side is idempotent). While a reply is generated, partial
text goes to `PARTIALS_STREAM` (fields battle_id, side, text = the whole text so far; best
effort, trimmed; the bot may ignore it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

JOB_FUNCTION = "workers.jobs.answer"
TRANSCRIBE_FUNCTION = "workers.jobs.transcribe"

Side = Literal["a", "b"]
ErrorKind = Literal["transient", "permanent", "timeout", "bad_audio"]


@dataclass(frozen=True)
class JobRequest:
    battle_id: str
    side: Side
    model_id: str
    audio_key: str
    audio_format: str  # file suffix the bot saw, e.g. "ogg"; decoding sniffs the bytes anyway
    max_audio_seconds: float
    # Earlier turns of the same conversation, [{"role": "user"|"assistant", "content": str}].
    history: list[dict[str, str]] = field(default_factory=list)
    enqueued_at: float = 0.0
    # Reply modes speech/both: the worker also delivers the reply as audio, at
    # `reply_audio_key(battle_id, side)` (the model's own speech, or the study's TTS voicing it).
    speak: bool = False
    turn: int = 1  # which turn of the battle this answers; the result carries it back

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        return cls(**data)


SPOKEN_FIELDS = ("audio_key", "audio_seconds", "audio_format")


@dataclass(frozen=True)
class ResultMessage:
    battle_id: str
    side: Side
    model_id: str
    reply: str | None
    transcript: str | None
    # Seconds: load, total, first_token where known, queue_wait, decode_audio, asr, generate.
    timings: dict[str, float]
    error: str | None = None
    error_kind: ErrorKind | None = None
    job_id: str | None = None
    worker: str | None = None
    finished_at: float = 0.0
    # The spoken reply, when the job was asked to speak: where its bytes are, how long it is.
    audio_key: str | None = None
    audio_seconds: float | None = None
    audio_format: str | None = None
    turn: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """The fields; the spoken-reply ones only when set, so a text reply reads as before."""
        data = asdict(self)
        for name in SPOKEN_FIELDS:
            if data[name] is None:
                del data[name]
        return data

    def to_fields(self) -> dict[FieldT, EncodableT]:
        """Flat string fields for XADD (typed as redis-py's XADD takes them: an invariant dict)."""
        return {"data": json.dumps(self.as_dict(), ensure_ascii=False)}

    @classmethod
    def from_fields(cls, fields: dict[bytes | str, bytes | str]) -> ResultMessage:
        raw = fields.get("data", fields.get(b"data"))
        if raw is None:
            raise ValueError(f"result message without a 'data' field: {sorted(map(str, fields))}")
        if isinstance(raw, bytes):
            raw = raw.decode()
        return cls(**json.loads(raw))


TranscribePurpose = Literal["turn", "reason"]


@dataclass(frozen=True)
class TranscribeRequest:
    """A job for the study's ASR (`TRANSCRIBE_FUNCTION` on the queue of the models file's ASR
    model): the words of one turn's clip (for the models' histories) or of a voice reason."""

    battle_id: str
    purpose: TranscribePurpose
    model_id: str
    audio_key: str
    audio_format: str
    max_audio_seconds: float
    turn: int = 1
    enqueued_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscribeRequest:
        return cls(**data)


@dataclass(frozen=True)
class TranscriptMessage:
    """The ASR's answer, on `keys.TRANSCRIPTS_STREAM`: `text`, or `error` when it failed."""

    battle_id: str
    purpose: TranscribePurpose
    turn: int
    text: str | None
    model_id: str
    seconds: float = 0.0
    error: str | None = None

    def to_fields(self) -> dict[FieldT, EncodableT]:
        """Flat string fields for XADD (typed as redis-py's XADD takes them: an invariant dict)."""
        return {"data": json.dumps(asdict(self), ensure_ascii=False)}

    @classmethod
    def from_fields(cls, fields: dict[bytes | str, bytes | str]) -> TranscriptMessage:
        raw = fields.get("data", fields.get(b"data"))
        if raw is None:
            names = sorted(map(str, fields))
            raise ValueError(f"transcript message without a 'data' field: {names}")
        if isinstance(raw, bytes):
            raw = raw.decode()
        return cls(**json.loads(raw))
