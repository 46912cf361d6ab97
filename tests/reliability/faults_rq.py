"""RQ states a crashed worker leaves behind, built with RQ's own worker methods (no process).

Tests may use rq directly: these reproduce, step for step, what rq's worker does, which is
exactly what `contract.queueing` must read back."""

from __future__ import annotations

import time

import redis
from rq import Queue, SimpleWorker
from rq.job import Job

from contract import heartbeat
from contract.heartbeat import WorkerEntry


def take_job_and_die(conn: redis.Redis, queue_name: str, *, worker: str) -> Job:
    """Take the queue's next job the way a worker serving only this queue does (rq's
    `Queue.dequeue_any` -> `Queue.lmove`: LMOVE from the queue into its intermediate list), and
    nothing more, as if the worker were SIGKILLed before it marked the job started: the job
    stays `queued`, in no queue."""
    queue = Queue(queue_name, connection=conn)
    rq_worker = SimpleWorker([queue], connection=conn, name=worker)
    dequeued = rq_worker.dequeue_job_and_maintain_ttl(timeout=1)
    if dequeued is None:
        raise RuntimeError(f"queue {queue_name} has no job to take")
    job, _ = dequeued
    if job.id.encode() not in conn.lrange(queue.intermediate_queue_key, 0, -1):
        raise RuntimeError(f"rq did not move job {job.id} to {queue.intermediate_queue_key}")
    job.refresh()
    return job


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
    entry = WorkerEntry(worker, "test", 1, (), started_at=0.0, heartbeat_at=at or time.time())
    heartbeat.write(conn, entry)
