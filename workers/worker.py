"""The worker process: load the models once, announce them, serve their RQ queues.

Why `SimpleWorker` (`contract.queueing.ParleyWorker`): RQ's default worker forks a "work horse"
per job. A forked child cannot use the parent's CUDA context, and anything it loads dies with
it, so every job would pay for loading the model again. A `SimpleWorker` runs each job in this
process, where the models stay loaded (and warm) for the process's whole life. The price — a job
that crashes the interpreter takes the worker with it — is paid by running workers under a
supervisor (systemd, honcho, k8s) that restarts them; the bot's sweeper re-enqueues the job.

Liveness: a heartbeat thread writes this worker's `contract.heartbeat.WorkerEntry` every
`HEARTBEAT_INTERVAL_S` and removes it on a clean exit; an entry older than `STALE_AFTER_S`
belongs to a dead worker (`contract.heartbeat.live_workers`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable

import redis

from contract import heartbeat, queueing
from contract.heartbeat import HEARTBEAT_INTERVAL_S, WorkerEntry
from contract.modelsfile import ModelsFile
from workers import runtime

log = logging.getLogger(__name__)


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
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.connection = connection
        self.name = name
        self.interval_s = interval_s
        self.entry = WorkerEntry(
            name=name,
            host=socket.gethostname(),
            pid=os.getpid(),
            models=tuple(models),
            started_at=time.time(),
            heartbeat_at=0.0,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parley-heartbeat", daemon=True)

    def beat(self) -> None:
        self.entry = dataclasses.replace(self.entry, heartbeat_at=time.time())
        heartbeat.write(self.connection, self.entry)

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
            heartbeat.remove(self.connection, self.name)
        except redis.exceptions.RedisError as exc:
            log.warning("could not remove worker entry %s: %s", self.name, exc)


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
    worker = queueing.build_worker(
        connection, loaded.models, job_timeout_s=job_timeout_s, name=name
    )
    beating = Heartbeat(connection, name, loaded.models).start()
    log.info("worker %s serving %s", name, ", ".join(loaded.models))
    try:
        queueing.run_worker(worker, burst=burst, with_scheduler=with_scheduler, log_level=log_level)
    finally:
        beating.stop()
        runtime.install(None)
        loaded.close()
