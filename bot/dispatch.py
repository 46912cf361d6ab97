"""Hand a battle's two jobs to the workers, and read the queues back for progress and status.

RQ is synchronous: every function here takes a plain `redis.Redis` connection (RQ stores pickled
bytes, so it must not decode responses) and the bot calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC

import redis
from rq import Queue
from rq.job import Job

from contract.keys import WORKERS_KEY, audio_key, queue_name
from contract.protocol import JobRequest

# A worker that has not refreshed its heartbeat for this long is taken for dead (workers beat
# every 5 s and call an entry stale after 15 s: workers.worker.STALE_AFTER_S).
WORKER_STALE_AFTER_S = 15.0


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    host: str
    models: tuple[str, ...]
    heartbeat: float  # unix time of the last heartbeat


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
) -> list[JobRequest]:
    """One `JobRequest` per side; `sides` maps "a"/"b" to the model id drawn for it."""
    if set(sides) != {"a", "b"}:
        raise ValueError(f"a battle needs exactly the sides 'a' and 'b', got {sorted(sides)}")
    return [
        JobRequest(
            battle_id=battle_id,
            side=side,  # type: ignore[arg-type]
            model_id=sides[side],
            audio_key=audio_key(battle_id),
            audio_format=audio_format,
            max_audio_seconds=max_audio_seconds,
            enqueued_at=now,
        )
        for side in ("a", "b")
    ]


def enqueue_battle(
    conn: redis.Redis,
    requests: list[JobRequest],
    *,
    timeout_s: int,
    retries: int = 1,
) -> list[str]:
    """Enqueue every request (one per side) and return the RQ job ids, in the same order."""
    # Imported here so that reading the queues (status, positions) works without the workers
    # package's enqueue helper being importable, e.g. in a moderator-only tool.
    from workers.enqueue import enqueue_answer

    return [
        enqueue_answer(conn, request, timeout_s=timeout_s, retries=retries).id
        for request in requests
    ]


def queue_position(conn: redis.Redis, job_ids: list[str]) -> int | None:
    """Jobs ahead of the later of a battle's jobs (0 = being served next); None once all started.

    The participant waits for both replies, so the slower queue is the one that counts.
    """
    positions: list[int] = []
    for job in Job.fetch_many(job_ids, connection=conn):
        if job is None or job.origin is None:
            continue
        position = Queue(job.origin, connection=conn).get_job_position(job.id)
        if position is not None:
            positions.append(position)
    return max(positions) if positions else None


def queue_depths(conn: redis.Redis, model_ids: list[str]) -> dict[str, int]:
    """Jobs waiting in each model's queue."""
    return {model_id: Queue(queue_name(model_id), connection=conn).count for model_id in model_ids}


def live_workers(
    conn: redis.Redis, *, now: float | None = None, stale_after_s: float = WORKER_STALE_AFTER_S
) -> list[WorkerInfo]:
    """Workers whose heartbeat in `WORKERS_KEY` is fresh, sorted by name."""
    now = time.time() if now is None else now
    workers: list[WorkerInfo] = []
    for raw_name, raw in conn.hgetall(WORKERS_KEY).items():
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        try:
            data = json.loads(raw)
            heartbeat = float(data.get("heartbeat_at", 0.0))
        except (ValueError, TypeError, AttributeError):
            # A malformed entry is some other writer's bug; status must still show the rest.
            continue
        if now - heartbeat > stale_after_s:
            continue
        workers.append(
            WorkerInfo(
                name=name,
                host=str(data.get("host", "?")),
                models=tuple(str(m) for m in data.get("models", ())),
                heartbeat=heartbeat,
            )
        )
    return sorted(workers, key=lambda w: w.name)


def oldest_waiting(
    conn: redis.Redis, model_ids: list[str], *, now: float | None = None
) -> WaitingJob | None:
    """The job that has waited longest at the head of any of these models' queues."""
    now = time.time() if now is None else now
    oldest: WaitingJob | None = None
    for model_id in model_ids:
        queue = Queue(queue_name(model_id), connection=conn)
        for job_id in queue.get_job_ids(0, 1):
            job = Job.fetch_many([job_id], connection=conn)[0]
            if job is None or job.enqueued_at is None:
                continue
            enqueued = job.enqueued_at
            if enqueued.tzinfo is None:
                # RQ stores naive UTC datetimes.
                enqueued = enqueued.replace(tzinfo=UTC)
            waited = now - enqueued.timestamp()
            if oldest is None or waited > oldest.waited_s:
                oldest = WaitingJob(model_id=model_id, job_id=job_id, waited_s=max(waited, 0.0))
    return oldest
