"""The worker process: load the models once, announce them, serve their RQ queues.

Why `SimpleWorker`: RQ's default worker forks a "work horse" per job. A forked child cannot use
the parent's CUDA context, and anything it loads dies with it, so every job would pay for loading
the model again. A `SimpleWorker` runs each job in this process, where the models stay loaded
(and warm) for the process's whole life. The price — a job that crashes the interpreter takes the
worker with it — is paid by running workers under a supervisor (systemd, honcho, k8s) that
restarts them; RQ then marks the abandoned job failed.

Liveness: a heartbeat thread writes this worker's entry into the hash `WORKERS_KEY` every
`HEARTBEAT_INTERVAL_S` (JSON: host, pid, models, started_at, heartbeat_at) and removes it on a
clean exit; an entry whose heartbeat_at is older than `STALE_AFTER_S` belongs to a dead worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable

import redis
from rq import Queue, SimpleWorker
from rq.job import Job

from contract.keys import WORKERS_KEY, queue_name
from contract.modelsfile import ModelsFile
from workers import runtime

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 5.0
STALE_AFTER_S = 3 * HEARTBEAT_INTERVAL_S


class ParleyWorker(SimpleWorker):
    """A SimpleWorker that caps every job's timeout at this worker's `job_timeout_s`."""

    def __init__(self, *args: object, job_timeout_s: int, **kwargs: object) -> None:
        if job_timeout_s <= 0:
            raise ValueError(f"job_timeout_s must be positive, got {job_timeout_s}")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.job_timeout_s = job_timeout_s

    def perform_job(self, job: Job, queue: Queue) -> bool:
        # The enqueuer sets the timeout (settings.job_timeout_s on the bot); the worker's own
        # setting is the ceiling, so a host can be stricter than the bot.
        if job.timeout is None or job.timeout < 0 or job.timeout > self.job_timeout_s:
            job.timeout = self.job_timeout_s
        return super().perform_job(job, queue)


class Heartbeat:
    """Keeps this worker's entry in `WORKERS_KEY` fresh from a daemon thread."""

    def __init__(
        self,
        connection: redis.Redis,
        name: str,
        models: Iterable[str],
        *,
        interval_s: float = HEARTBEAT_INTERVAL_S,
    ) -> None:
        self.connection = connection
        self.name = name
        self.interval_s = interval_s
        self.info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "models": list(models),
            "started_at": time.time(),
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parley-heartbeat", daemon=True)

    def beat(self) -> None:
        entry = {**self.info, "heartbeat_at": time.time()}
        self.connection.hset(WORKERS_KEY, self.name, json.dumps(entry))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except redis.exceptions.RedisError as exc:
                # A Redis blip must not kill the thread; the next beat tries again.
                log.warning("heartbeat failed: %s", exc)

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval_s + 1)
        try:
            self.connection.hdel(WORKERS_KEY, self.name)
        except redis.exceptions.RedisError as exc:
            log.warning("could not remove worker entry %s: %s", self.name, exc)


def live_workers(connection: redis.Redis, *, now: float | None = None) -> dict[str, dict]:
    """Entries of `WORKERS_KEY` whose heartbeat is fresh (what `/study status` shows)."""
    now = time.time() if now is None else now
    live: dict[str, dict] = {}
    for name, raw in connection.hgetall(WORKERS_KEY).items():
        entry = json.loads(raw)
        if now - float(entry.get("heartbeat_at", 0)) <= STALE_AFTER_S:
            live[name.decode() if isinstance(name, bytes) else name] = entry
    return live


def worker_name() -> str:
    return f"parley-{socket.gethostname()}-{os.getpid()}"


def serve(
    models_file: ModelsFile,
    ids: Iterable[str] | None,
    connection: redis.Redis,
    *,
    job_timeout_s: int,
    burst: bool = False,
    warmup: bool = True,
    with_scheduler: bool = False,
    log_level: str = "INFO",
) -> None:
    """Load and warm the models (all of the file's when `ids` is None), then serve until stopped.

    SIGINT/SIGTERM stop it after the current job (RQ's warm shutdown).
    """
    loaded = runtime.load_runtime(models_file, ids, warmup=warmup)
    runtime.install(loaded)
    name = worker_name()
    queues = [Queue(queue_name(model_id), connection=connection) for model_id in loaded.models]
    worker = ParleyWorker(queues, connection=connection, name=name, job_timeout_s=job_timeout_s)
    heartbeat = Heartbeat(connection, name, loaded.models).start()
    log.info("worker %s serving %s", name, ", ".join(q.name for q in queues))
    try:
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=log_level)
    finally:
        heartbeat.stop()
        runtime.install(None)
        loaded.close()
