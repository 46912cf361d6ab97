"""Hand a battle's two jobs to the workers, and read the queues back for progress and status.

Over `contract.queueing` (the RQ adapter) and `contract.heartbeat`. RQ is synchronous: every
function here takes a plain `redis.Redis` connection (RQ stores pickled bytes, so it must not
decode responses) and the bot calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from contract import heartbeat, queueing
from contract.heartbeat import WorkerEntry
from contract.keys import turn_audio_key
from contract.modelsfile import ASR_BACKENDS, ModelsFile
from contract.protocol import JobRequest, TranscribePurpose, TranscribeRequest
from contract.records import Battle

# What `live_workers` returns (the heartbeat's own record; the old name kept for callers).
WorkerInfo = WorkerEntry


@dataclass(frozen=True)
class WaitingJob:
    model_id: str
    job_id: str
    waited_s: float


def battle_requests(
    battle_id: str,
    sides: dict[str, str],
    *,
    audio_format: str,
    max_audio_seconds: float,
    now: float,
    speak: bool = False,
    turn: int = 1,
    histories: dict[str, list[dict[str, str]]] | None = None,
) -> list[JobRequest]:
    """One `JobRequest` per side; `sides` maps "a"/"b" to the model id drawn for it. `speak`:
    the battle's replies are spoken (reply modes speech/both).

    For a later turn, `histories` holds each side's own conversation so far
    (`Battle.history(side)`): the user's earlier words and that side's replies only."""
    if set(sides) != {"a", "b"}:
        raise ValueError(f"a battle needs exactly the sides 'a' and 'b', got {sorted(sides)}")
    histories = histories or {}
    return [
        JobRequest(
            battle_id=battle_id,
            side=side,
            model_id=sides[side],
            audio_key=turn_audio_key(battle_id, turn),
            audio_format=audio_format,
            max_audio_seconds=max_audio_seconds,
            history=list(histories.get(side, [])),
            enqueued_at=now,
            speak=speak,
            turn=turn,
        )
        for side in ("a", "b")
    ]


def needs_transcript(models: ModelsFile, battle: Battle) -> bool:
    """Whether the study's ASR must transcribe this turn's clip for the models' histories:
    only when neither side transcribes it itself (an ASR pipeline does)."""
    return models.asr_model is not None and not any(
        models.models[m].backend in ASR_BACKENDS
        for m in (battle.model_a, battle.model_b)
        if m in models.models
    )


def enqueue_transcribe(
    conn: redis.Redis,
    models: ModelsFile,
    *,
    battle_id: str,
    purpose: TranscribePurpose,
    audio_key: str,
    audio_format: str,
    max_audio_seconds: float,
    turn: int = 1,
    timeout_s: int,
) -> str:
    """Hand a clip to the study's ASR (the models file's `asr_model`); returns the job id."""
    if models.asr_model is None:
        raise ValueError(f"the models file {models.path} has no ASR model to transcribe with")
    return queueing.enqueue_transcribe(
        conn,
        TranscribeRequest(
            battle_id=battle_id,
            purpose=purpose,
            model_id=models.asr_model,
            audio_key=audio_key,
            audio_format=audio_format,
            max_audio_seconds=max_audio_seconds,
            turn=turn,
        ),
        timeout_s=timeout_s,
    )


def enqueue_battle(
    conn: redis.Redis,
    requests: list[JobRequest],
    *,
    timeout_s: int,
    retries: int = 1,
) -> list[str]:
    """Enqueue every request (one per side) and return the RQ job ids, in the same order."""
    return [
        queueing.enqueue_answer(conn, request, timeout_s=timeout_s, retries=retries)
        for request in requests
    ]


def queue_position(conn: redis.Redis, job_ids: list[str]) -> int | None:
    """Jobs ahead of the later of a battle's jobs (0 = being served next); None once all started.

    The participant waits for both replies, so the slower queue is the one that counts.
    """
    positions = [
        position
        for position in (queueing.job_position(conn, job_id) for job_id in job_ids)
        if position is not None
    ]
    return max(positions) if positions else None


def queue_depths(conn: redis.Redis, model_ids: list[str]) -> dict[str, int]:
    """Jobs waiting in each model's queue."""
    return {model_id: queueing.queue_depth(conn, model_id) for model_id in model_ids}


def live_workers(
    conn: redis.Redis,
    *,
    now: float | None = None,
    stale_after_s: float = heartbeat.STALE_AFTER_S,
) -> list[WorkerEntry]:
    """Workers whose heartbeat is fresh, sorted by name."""
    return heartbeat.live_workers(conn, now=now, stale_after_s=stale_after_s)


def oldest_waiting(
    conn: redis.Redis, model_ids: list[str], *, now: float | None = None
) -> WaitingJob | None:
    """The job that has waited longest at the head of any of these models' queues."""
    now = time.time() if now is None else now
    oldest: WaitingJob | None = None
    for model_id in model_ids:
        head = queueing.queue_head(conn, model_id)
        if head is None or head.enqueued_at is None:
            continue
        waited = now - head.enqueued_at
        if oldest is None or waited > oldest.waited_s:
            oldest = WaitingJob(model_id=model_id, job_id=head.job_id, waited_s=max(waited, 0.0))
    return oldest
