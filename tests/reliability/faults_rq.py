"""RQ states a crashed worker leaves behind, built with RQ's own worker methods (no process)."""

from __future__ import annotations

import json
import time

import redis
from rq import Queue, SimpleWorker
from rq.job import Job

from contract.keys import WORKERS_KEY


def start_job_and_die(
    conn: redis.Redis, queue_name: str, *, worker: str, heartbeat_at: float | None
) -> Job:
    """Dequeue the queue's next job and mark it started by `worker`, exactly as a SimpleWorker
    does before it runs the job; then nothing more, as if the worker were SIGKILLed there.

    `heartbeat_at` is the worker's last Parley heartbeat (None: no entry at all)."""
    queue = Queue(queue_name, connection=conn)
    rq_worker = SimpleWorker([queue], connection=conn, name=worker)
    dequeued = rq_worker.dequeue_job_and_maintain_ttl(timeout=1)
    if dequeued is None:
        raise RuntimeError(f"queue {queue_name} has no job to start")
    job, _ = dequeued
    rq_worker.prepare_execution(job)
    rq_worker.prepare_job_execution(job)
    if heartbeat_at is not None:
        beat(conn, worker, heartbeat_at)
    job.refresh()
    return job


def beat(conn: redis.Redis, worker: str, at: float | None = None) -> None:
    """The entry a live worker's heartbeat thread writes."""
    entry = {"host": "test", "pid": 1, "models": [], "started_at": 0.0}
    conn.hset(WORKERS_KEY, worker, json.dumps({**entry, "heartbeat_at": at or time.time()}))
