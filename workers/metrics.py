"""The worker's Prometheus metrics (`python -m workers --metrics-port P`, or PARLEY_METRICS_PORT).

Recorded by the job (`workers.jobs.answer`) as it runs, per model:

- `parley_worker_jobs_total{model, outcome}`: jobs ended, `ok` or `failed`;
- `parley_worker_job_failures_total{model, kind}`: failed attempts by kind (`bad_audio`,
  `permanent`, `timeout`, `transient`);
- `parley_worker_job_seconds{model}` (histogram): job start to result;
- `parley_worker_first_token_seconds{model}` (histogram): job start to the first token;
- `parley_worker_queue_wait_seconds{model}` (histogram): enqueue to job start;
- `parley_worker_jobs_in_flight{model}` (gauge), `parley_worker_slots` (its `--concurrency`);
- `parley_queue_depth{model}` (gauge, read from Redis at each scrape) for the models it serves.

A transient failure that RQ retries counts as a failure each time it happens.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contract.metrics import (
    FIRST_TOKEN_BUCKETS,
    LATENCY_BUCKETS,
    QUEUE_WAIT_BUCKETS,
    QueueDepthCollector,
    observe_timings,
)
from contract.protocol import ResultMessage


class WorkerMetrics:
    def __init__(
        self,
        *,
        models: Iterable[str],
        concurrency: int,
        conn: redis.Redis | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.models = tuple(models)
        r = self.registry
        self.jobs = Counter(
            "parley_worker_jobs", "Jobs this worker ended", ["model", "outcome"], registry=r
        )
        self.failures = Counter(
            "parley_worker_job_failures",
            "Failed job attempts by kind",
            ["model", "kind"],
            registry=r,
        )
        self.latency = Histogram(
            "parley_worker_job_seconds",
            "Job start to result",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "parley_worker_first_token_seconds",
            "Job start to the reply's first token",
            ["model"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "parley_worker_queue_wait_seconds",
            "Enqueue to job start",
            ["model"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "parley_worker_jobs_in_flight", "Jobs running now", ["model"], registry=r
        )
        self.slots = Gauge("parley_worker_slots", "Jobs this worker runs at most", registry=r)
        self.slots.set(concurrency)
        for model_id in self.models:
            # Present from the start (at zero), so dashboards and rate() see every model.
            self.in_flight.labels(model_id)
            self.jobs.labels(model_id, "ok")
            self.jobs.labels(model_id, "failed")
        if conn is not None:
            r.register(QueueDepthCollector(conn, lambda: self.models))

    def job_started(self, model_id: str) -> None:
        self.in_flight.labels(model_id).inc()

    def job_done(self, message: ResultMessage) -> None:
        model_id = message.model_id
        self.in_flight.labels(model_id).dec()
        self.jobs.labels(model_id, "ok").inc()
        observe_timings(
            model_id,
            message.timings,
            total=self.latency,
            first_token=self.first_token,
            queue_wait=self.queue_wait,
        )

    def job_failed(self, model_id: str, kind: str) -> None:
        self.in_flight.labels(model_id).dec()
        self.jobs.labels(model_id, "failed").inc()
        self.failures.labels(model_id, kind).inc()
