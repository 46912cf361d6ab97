"""RQ behind one adapter: the only production module that imports `rq`.

Everything Parley does with RQ goes through here, so an rq release that moves or renames
something breaks this module and its tests (tests/contract/test_queueing.py), not the bot, the
sweeper and the workers. What Parley needs from RQ:

- enqueue one side of a battle (`enqueue_answer`): `workers.jobs.answer` on the model's queue,
  with a job timeout, RQ `Retry`, `workers.jobs.report_failure` as failure callback and TTLs;
- read the queues (`queue_depth`, `queue_head`, `job_position`) and a job's state as a small
  typed `JobSnapshot` (`fetch_job`);
- take an abandoned job out of RQ's hands (`retire`), so neither a worker nor RQ's own registry
  cleanup runs it again;
- the worker (`ParleyWorker`, a `SimpleWorker`; `run_worker`), the concurrent worker
  (`WorkerSlots`: N `SlotWorker`s in threads of one process; `run_slots`) and what a running job
  needs (`current_job`, `JobTimeout`, `RunningJob`).

RQ is synchronous and stores pickled bytes: every function takes a plain `redis.Redis` that does
not decode responses. Queues are per model (`contract.keys.queue_name`); the adapter takes
model ids and hides the queue objects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Callback, Queue, Retry, SimpleWorker
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError, StopRequested
from rq.job import Job, JobStatus, get_current_job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.timeouts import JobTimeoutException, TimerDeathPenalty

from contract.keys import queue_name
from contract.protocol import JOB_FUNCTION, TRANSCRIBE_FUNCTION, JobRequest, TranscribeRequest

log = logging.getLogger(__name__)

FAILURE_CALLBACK = "workers.jobs.report_failure"
# RQ bookkeeping only: the result itself travels on the results stream.
RESULT_TTL_S = 3600
FAILURE_TTL_S = 7 * 24 * 3600

# What a job function sees of its own job (`workers.jobs`): RQ's Job, named here so that no
# other module imports rq for it. The failure callback receives the same type.
RunningJob = Job
# Raised inside a job that runs past its timeout (RQ's death penalty).
JobTimeout = JobTimeoutException


class JobUnreadable(ValueError):
    """A job record RQ cannot read back (its pickled data is damaged or from another codebase)."""


class JobState(enum.StrEnum):
    """RQ's job status, as Parley names it (the same strings RQ stores)."""

    CREATED = "created"
    QUEUED = "queued"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELED = "canceled"


@dataclass(frozen=True)
class JobSnapshot:
    """One job as RQ holds it at one moment."""

    job_id: str
    state: JobState
    queue: str | None  # the RQ queue it was enqueued on ("model:<id>")
    # Index in its queue (0 = next to be served), None when the job is not in the queue's list.
    position: int | None
    worker_name: str | None
    enqueued_at: float | None  # unix times
    started_at: float | None
    ended_at: float | None
    timeout: int | None  # seconds
    args: tuple[Any, ...]
    retries_left: int | None

    @property
    def in_queue(self) -> bool:
        return self.position is not None

    @property
    def waiting(self) -> bool:
        """Waiting for a worker: in its queue, or deferred / scheduled for later."""
        if self.state is JobState.QUEUED:
            return self.in_queue
        return self.state in (JobState.DEFERRED, JobState.SCHEDULED)

    @property
    def taken(self) -> bool:
        """Taken from its queue by a worker but never started. A worker marks a job started
        within milliseconds of taking it (LMOVE into the queue's intermediate list, or LPOP when
        it serves several queues), so a job that stays like this lost its worker in between."""
        return self.state is JobState.QUEUED and not self.in_queue

    def request(self) -> JobRequest:
        """The `JobRequest` this job carries; ValueError when it carries none."""
        if not self.args or not isinstance(self.args[0], dict):
            raise ValueError(f"job {self.job_id} carries no job request: args {self.args!r}")
        try:
            return JobRequest.from_dict(dict(self.args[0]))
        except TypeError as exc:
            raise ValueError(f"job {self.job_id} has an unreadable job request: {exc}") from exc


# -- enqueueing ----------------------------------------------------------------------------------


def enqueue_answer(
    conn: redis.Redis,
    request: JobRequest,
    *,
    timeout_s: int,
    retries: int = 1,
    retry_interval_s: int = 0,
) -> str:
    """Queue one side of a battle on its model's queue; returns the RQ job id.

    Up to `retries` RQ retries for transient failures (the API backends already retry 429/5xx
    with backoff inside one attempt); the failure callback turns every other way a job can end
    into a failure `ResultMessage` on the results stream. `enqueued_at` is filled in if unset.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if retry_interval_s < 0:
        raise ValueError(f"retry_interval_s must be >= 0, got {retry_interval_s}")
    if not request.enqueued_at:
        request = dataclasses.replace(request, enqueued_at=time.time())
    queue = Queue(queue_name(request.model_id), connection=conn)
    job = queue.enqueue(
        JOB_FUNCTION,
        request.to_dict(),
        job_timeout=timeout_s,
        # A retry with an interval waits in RQ's scheduler; 0 puts it straight back on the queue.
        retry=Retry(max=retries, interval=retry_interval_s) if retries else None,
        on_failure=Callback(FAILURE_CALLBACK),
        result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
        description=f"{request.model_id} battle {request.battle_id} side {request.side}",
    )
    return job.id


def enqueue_transcribe(conn: redis.Redis, request: TranscribeRequest, *, timeout_s: int) -> str:
    """Queue a clip for the study's ASR on its model's queue; returns the RQ job id. The job
    reports its own failures (on TRANSCRIPTS_STREAM), so no retry and no failure callback."""
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if not request.enqueued_at:
        request = dataclasses.replace(request, enqueued_at=time.time())
    queue = Queue(queue_name(request.model_id), connection=conn)
    job = queue.enqueue(
        TRANSCRIBE_FUNCTION,
        request.to_dict(),
        job_timeout=timeout_s,
        result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
        description=f"{request.model_id} transcribes battle {request.battle_id} "
        f"({request.purpose} {request.turn})",
    )
    return job.id


# -- reading the queues ------------------------------------------------------------------------


def queue_depth(conn: redis.Redis, model_id: str) -> int:
    """Jobs waiting in the model's queue."""
    return Queue(queue_name(model_id), connection=conn).count


def queue_head(conn: redis.Redis, model_id: str) -> JobSnapshot | None:
    """The job next in line on the model's queue; None when it is empty (or its record is gone)."""
    for job_id in Queue(queue_name(model_id), connection=conn).get_job_ids(0, 1):
        return fetch_job(conn, job_id)
    return None


def job_position(conn: redis.Redis, job_id: str) -> int | None:
    """Jobs ahead of this one in its queue; None once it left the queue (or never was)."""
    snapshot = fetch_job(conn, job_id)
    return None if snapshot is None else snapshot.position


def fetch_job(conn: redis.Redis, job_id: str) -> JobSnapshot | None:
    """The job's state now; None when RQ has no such job. JobUnreadable for damaged records."""
    # The status and the queue position are read in one transaction: read apart, a live worker
    # taking the job in between would make a waiting job look taken.
    for _ in range(3):
        job = _fetch(conn, job_id)
        if job is None:
            return None
        queue_key = Queue(job.origin, connection=conn).key if job.origin else None
        with conn.pipeline(transaction=True) as pipe:
            pipe.hget(job.key, "status")
            if queue_key is not None:
                pipe.lpos(queue_key, job.id)
            replies = pipe.execute()
        raw_status = replies[0]
        if raw_status is None:
            return None  # deleted since the fetch
        status = raw_status.decode() if isinstance(raw_status, bytes) else str(raw_status)
        if status == _status(job).value:
            return _snapshot(job, replies[1] if queue_key is not None else None)
        # It moved on (e.g. a worker started it) between the two reads: read it again.
    # A ValueError like other unreadable jobs: the sweeper skips it this pass and reads it next.
    raise JobUnreadable(f"job {job_id} changes state faster than it can be read")


def fetch_jobs(conn: redis.Redis, job_ids: Iterable[str]) -> list[JobSnapshot | None]:
    return [fetch_job(conn, job_id) for job_id in job_ids]


# -- taking a job out of RQ's hands ---------------------------------------------------------


def retire(conn: redis.Redis, job_id: str, reason: str) -> JobState | None:
    """Make sure neither a worker nor RQ's own maintenance runs this job (again).

    A job waiting in its queue (or deferred, scheduled) is cancelled. A job that a worker took
    (started, or taken and never started) is removed from the started registry and the queue's
    intermediate list, and failed with no retry left, with `reason` as its failure: RQ's
    registry cleanup would otherwise fail it again later, and retry it if it had retries left.
    Jobs that ended, or no longer exist, are left as they are. Returns the state it left the
    job in (None: no such job).
    """
    snapshot = fetch_job(conn, job_id)
    job = _fetch(conn, job_id)
    if snapshot is None or job is None:
        return None
    if snapshot.waiting:
        # Gone or already cancelled: either way it will not run.
        with contextlib.suppress(NoSuchJobError, InvalidJobOperation):
            job.cancel()
        return JobState.CANCELED
    if not (snapshot.state is JobState.STARTED or snapshot.taken) or job.origin is None:
        return snapshot.state
    registry = StartedJobRegistry(job.origin, connection=conn)
    executions = [
        f"{started_id}:{execution_id}"
        for started_id, execution_id in registry.get_job_and_execution_ids(cleanup=False)
        if started_id == job.id
    ]
    intermediate = Queue(job.origin, connection=conn).intermediate_queue_key
    with conn.pipeline() as pipe:
        if executions:
            pipe.zrem(registry.key, *executions)
        pipe.lrem(intermediate, 0, job.id)
        job.retries_left = 0
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        FailedJobRegistry(job.origin, connection=conn).add(
            job, ttl=FAILURE_TTL_S, exc_string=reason, pipeline=pipe
        )
        pipe.execute()
    return JobState.FAILED


# -- forgetting jobs (withdrawal) ------------------------------------------------------------


def job_record_keys(job_id: str) -> tuple[str, ...]:
    """The keys where RQ keeps one job's record (its arguments) and its results.

    A caller without a synchronous connection (the bot's result listener) deletes these with its
    own client; registries keep only the bare id, which the next RQ cleanup drops."""
    results_key: str = Result.get_key(job_id)  # type: ignore[no-untyped-call]  # rq leaves Result.get_key unannotated
    return (Job.key_for(job_id), results_key, Job.dependents_key_for(job_id))


def forget_jobs(conn: redis.Redis, job_ids: Iterable[str]) -> int:
    """Delete the RQ records of these jobs (a participant withdrew); returns how many existed.

    A job still waiting is cancelled and deleted, so it never runs. A job a worker is running is
    left to finish: deleting its record now would not stop it, and RQ writes the record again when
    it ends; its late result reaches the bot, which deletes the record then
    (`job_record_keys`). Every other job (ended, failed, cancelled) is deleted."""
    forgotten = 0
    for job_id in job_ids:
        try:
            snapshot = fetch_job(conn, job_id)
        except JobUnreadable:
            snapshot = None  # damaged: its keys go all the same
        if snapshot is not None and (snapshot.state is JobState.STARTED or snapshot.taken):
            continue
        if snapshot is not None:
            forgotten += 1
            job = _fetch(conn, job_id)
            if job is not None:
                with contextlib.suppress(NoSuchJobError, InvalidJobOperation):
                    if snapshot.waiting:
                        job.cancel()
                job.delete(remove_from_queue=True)
        conn.delete(*job_record_keys(job_id))
    return forgotten


# -- the worker side -------------------------------------------------------------------------


class ParleyWorker(SimpleWorker):
    """A SimpleWorker that caps every job's timeout at this worker's `job_timeout_s`.

    Simple (no fork per job): a forked child cannot use the parent's CUDA context and loses
    whatever it loads, so the models would load again for every job."""

    def __init__(self, *args: Any, job_timeout_s: int, **kwargs: Any) -> None:
        if job_timeout_s <= 0:
            raise ValueError(f"job_timeout_s must be positive, got {job_timeout_s}")
        super().__init__(*args, **kwargs)
        self.job_timeout_s = job_timeout_s

    def perform_job(self, job: Job, queue: Queue) -> bool:
        # The enqueuer sets the timeout (settings.job_timeout_s on the bot); the worker's own
        # setting is the ceiling, so a host can be stricter than the bot.
        if job.timeout is None or job.timeout < 0 or job.timeout > self.job_timeout_s:
            job.timeout = self.job_timeout_s
        return super().perform_job(job, queue)


def build_worker(
    conn: redis.Redis, model_ids: Iterable[str], *, job_timeout_s: int, name: str | None = None
) -> ParleyWorker:
    """A worker serving the queues of these models, in this order."""
    queues = [Queue(queue_name(model_id), connection=conn) for model_id in model_ids]
    if not queues:
        raise ValueError("a worker needs at least one model to serve")
    return ParleyWorker(queues, connection=conn, name=name, job_timeout_s=job_timeout_s)


# How often an idle slot looks up from its queues to see whether it was asked to stop.
SLOT_STOP_POLL_S = 2
# Slot k > 0 of worker `name` is named `name` + SLOT_SEPARATOR + k (slot 0 is `name` itself), so
# a job's RQ worker name leads back to the process's heartbeat (`contract.heartbeat`). Host
# names cannot contain it.
SLOT_SEPARATOR = "~"


def slot_name(name: str, slot: int) -> str:
    if slot < 0:
        raise ValueError(f"slot must be >= 0, got {slot}")
    return name if slot == 0 else f"{name}{SLOT_SEPARATOR}{slot}"


class SlotWorker(ParleyWorker):
    """One of the `WorkerSlots` of a process: a ParleyWorker that runs in a thread of its own.

    Two things of RQ's worker only work in the main thread, and are replaced here: signal
    handlers (the main thread owns SIGINT/SIGTERM and asks every slot to stop) and the job
    timeout (SIGALRM; here RQ's `TimerDeathPenalty` raises `JobTimeout` in the slot's thread).
    An idle slot waits on its queues at most `SLOT_STOP_POLL_S` at a time, so a stop request
    reaches it within that, not after RQ's ~7-minute dequeue timeout."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass  # the main thread's handlers call request_warm_stop()

    def request_warm_stop(self) -> None:
        """Stop after the job in hand (now, if idle)."""
        self._stop_requested = True

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        if timeout is None or max_idle_time is not None:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while True:
            if self._stop_requested:
                raise StopRequested()
            wait = min(timeout, SLOT_STOP_POLL_S)
            # max_idle_time makes RQ's loop return None after one empty wait instead of waiting
            # again on its own.
            found = super().dequeue_job_and_maintain_ttl(wait, max_idle_time=wait)
            if found is not None:
                return found


@dataclass
class WorkerSlots:
    """Up to `len(workers)` jobs in flight in one process: one `SlotWorker` per thread, all
    serving the same queues. Each slot is an RQ worker of its own (its own registration, started
    jobs, retries and failure callbacks), so everything RQ and the sweeper know about a worker
    holds per slot."""

    name: str
    workers: list[SlotWorker]

    @property
    def concurrency(self) -> int:
        return len(self.workers)


def build_slots(
    conn: redis.Redis,
    model_ids: Iterable[str],
    *,
    job_timeout_s: int,
    name: str,
    concurrency: int,
) -> WorkerSlots:
    """`concurrency` slot workers serving these models' queues, named by `slot_name`."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    ids = list(model_ids)
    if not ids:
        raise ValueError("a worker needs at least one model to serve")
    workers = [
        SlotWorker(
            [Queue(queue_name(model_id), connection=conn) for model_id in ids],
            connection=conn,
            name=slot_name(name, slot),
            job_timeout_s=job_timeout_s,
        )
        for slot in range(concurrency)
    ]
    return WorkerSlots(name=name, workers=workers)


def run_slots(
    slots: WorkerSlots,
    *,
    burst: bool = False,
    with_scheduler: bool = False,
    log_level: str = "INFO",
) -> bool:
    """Run every slot in its own thread until stopped; call from the main thread.

    SIGINT/SIGTERM: every slot finishes the job in hand and stops (warm); a second signal exits
    at once (cold: the jobs in flight are left to the sweeper). A slot that ends on its own
    outside burst mode (RQ quits on an unhandled error or a Redis timeout) stops the others,
    so the supervisor restarts a whole worker instead of keeping a crippled one. Only slot 0
    runs RQ's scheduler. Returns whether any slot did a job."""
    worked = [False] * slots.concurrency
    stopping = threading.Event()

    def serve(index: int, worker: SlotWorker) -> None:
        worked[index] = worker.work(
            burst=burst, with_scheduler=with_scheduler and index == 0, logging_level=log_level
        )

    def warm_stop(signum: int, _frame: object) -> None:
        if stopping.is_set():
            raise SystemExit(f"cold shutdown on signal {signum}")
        log.info("worker %s: warm shutdown requested (signal %d)", slots.name, signum)
        stopping.set()
        for worker in slots.workers:
            worker.request_warm_stop()

    previous = {sig: signal.signal(sig, warm_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    threads = [
        threading.Thread(target=serve, args=(i, w), name=f"parley-slot-{i}", daemon=True)
        for i, w in enumerate(slots.workers)
    ]
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.2)  # (a sleep, unlike a join, lets the signal handler run at once)
            if not burst and not stopping.is_set() and not all(t.is_alive() for t in threads):
                log.error("worker %s: a slot stopped on its own; stopping the others", slots.name)
                stopping.set()
                for worker in slots.workers:
                    worker.request_warm_stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return any(worked)


def run_worker(
    worker: ParleyWorker,
    *,
    burst: bool = False,
    with_scheduler: bool = False,
    log_level: str = "INFO",
) -> bool:
    """Serve until stopped (SIGINT/SIGTERM: after the current job), or until the queues are
    empty with `burst`. Returns whether the worker did any job."""
    return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=log_level)


def current_job() -> RunningJob | None:
    """The job this process is running, inside a job function; None elsewhere."""
    return get_current_job()


# -- internals -------------------------------------------------------------------------------


def _fetch(conn: redis.Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch_many([job_id], connection=conn)[0]
    except (DeserializationError, NoSuchJobError, ValueError, TypeError) as exc:
        raise JobUnreadable(f"job {job_id} cannot be read: {exc!r}") from exc


def _status(job: Job) -> JobState:
    status = job.get_status(refresh=False)
    if status is None:
        raise JobUnreadable(f"job {job.id} has no status")
    try:
        return JobState(status.value if isinstance(status, JobStatus) else str(status))
    except ValueError as exc:
        raise JobUnreadable(f"job {job.id} has an unknown status {status!r}") from exc


def _snapshot(job: Job, position: int | None) -> JobSnapshot:
    try:
        args = tuple(job.args)
    except DeserializationError as exc:
        raise JobUnreadable(f"job {job.id} has unreadable arguments: {exc!r}") from exc
    return JobSnapshot(
        job_id=job.id,
        state=_status(job),
        queue=job.origin,
        position=position,
        worker_name=job.worker_name,
        enqueued_at=_timestamp(job.enqueued_at),
        started_at=_timestamp(job.started_at),
        ended_at=_timestamp(job.ended_at),
        timeout=int(job.timeout) if job.timeout is not None else None,
        args=args,
        retries_left=job.retries_left,
    )


def _timestamp(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # RQ stores naive UTC datetimes
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
