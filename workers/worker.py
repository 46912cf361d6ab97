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

Concurrency (`--concurrency N`): N RQ workers ("slots", `contract.queueing.WorkerSlots`) run in
threads of this one process, so up to N jobs are in flight and share the loaded models. What a
second job in flight buys depends on the backend (`runtime.LoadedModel.guard`): an API backend
(`openai_compatible` in front of vLLM, OpenAI, Gemini) sends it at once, and the server batches;
an in-process transformers model answers one job at a time (its static KV cache and compiled
graphs hold one sequence), so the other jobs for it wait their turn, while jobs for the
worker's other models run. N = 1 is the plain SimpleWorker in the main thread, as before.
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
from contract.metrics import serve_metrics
from contract.modelsfile import ModelsFile
from workers import runtime
from workers.metrics import WorkerMetrics

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
        concurrency: int = 1,
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
            concurrency=concurrency,
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
    concurrency: int = 1,
    metrics_port: int | None = None,
    metrics_addr: str = "0.0.0.0",
) -> None:
    """Load and warm the models (all of the file's when `ids` is None), then serve until stopped.

    Up to `concurrency` jobs in flight (see the module docstring). SIGINT/SIGTERM stop it after
    the jobs in hand (RQ's warm shutdown). With `metrics_port`, /metrics is served there
    (`workers.metrics`) once the models are loaded.
    """
    if concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {concurrency}")
    loaded = runtime.load_runtime(models_file, ids, warmup=warmup)
    metrics_server = None
    if metrics_port is not None:
        loaded.metrics = WorkerMetrics(
            models=loaded.models, concurrency=concurrency, conn=connection
        )
        metrics_server = serve_metrics(loaded.metrics.registry, metrics_port, metrics_addr)
    runtime.install(loaded)
    name = worker_name()
    if concurrency == 1:
        worker = queueing.build_worker(
            connection, loaded.models, job_timeout_s=job_timeout_s, name=name
        )
    else:
        slots = queueing.build_slots(
            connection,
            loaded.models,
            job_timeout_s=job_timeout_s,
            name=name,
            concurrency=concurrency,
        )
    beating = Heartbeat(connection, name, loaded.models, concurrency=concurrency).start()
    log.info(
        "worker %s serving %s, up to %d job(s) at once",
        name,
        ", ".join(loaded.models),
        concurrency,
    )
    try:
        if concurrency == 1:
            queueing.run_worker(
                worker, burst=burst, with_scheduler=with_scheduler, log_level=log_level
            )
        else:
            queueing.run_slots(
                slots, burst=burst, with_scheduler=with_scheduler, log_level=log_level
            )
    finally:
        beating.stop()
        if metrics_server is not None:
            metrics_server.shutdown()
        runtime.install(None)
        loaded.close()
