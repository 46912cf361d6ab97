"""What the bot's and the worker's Prometheus metrics share: buckets, queue depth, the server.

Both processes expose `/metrics` only when a port is set (`PARLEY_METRICS_PORT`, or the
worker's `--metrics-port`); each keeps its metrics in a registry of its own, so tests (and a
process that builds two) never collide in prometheus_client's global one. Labels are model ids,
failure kinds, winners and flag names: never participants, nothing they said.
See docs/running-a-study.md ("Metrics").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from wsgiref.simple_server import WSGIServer

import redis
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from contract.queueing import queue_depth

log = logging.getLogger(__name__)

# Seconds. A battle side takes from a fraction of a second (an API model's first token) to a
# couple of minutes (a long local generation); the queue wait from nothing to minutes in a burst.
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0, 300.0)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
QUEUE_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class QueueDepthCollector(Collector):
    """`parley_queue_depth{model}`: jobs waiting in each model's RQ queue, read at scrape time
    (so it is right however many bots and workers enqueue and take jobs)."""

    def __init__(self, conn: redis.Redis, models: Callable[[], Iterable[str]]) -> None:
        self.conn = conn
        self.models = models

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Named without reading Redis, so registering does not need a connection.
        yield GaugeMetricFamily(
            "parley_queue_depth", "Jobs waiting in the model's queue", labels=["model"]
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "parley_queue_depth", "Jobs waiting in the model's queue", labels=["model"]
        )
        try:
            for model_id in self.models():
                family.add_metric([model_id], queue_depth(self.conn, model_id))
        except redis.exceptions.RedisError as exc:
            # A scrape must not fail as a whole because Redis blinked: the gauge is left out.
            log.warning("queue depth not read for /metrics: %s", exc)
            return
        yield family


def serve_metrics(registry: CollectorRegistry, port: int, addr: str) -> WSGIServer:
    """Serve `registry` at http://addr:port/metrics from a daemon thread; returns the server
    (`shutdown()` stops it). Port 0 picks a free port (`server.server_port`)."""
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be 0..65535, got {port}")
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    log.info("metrics at http://%s:%d/metrics", addr, server.server_port)
    return server


def observe_timings(
    model_id: str,
    timings: Mapping[str, float],
    *,
    total: Histogram,
    first_token: Histogram,
    queue_wait: Histogram,
) -> None:
    """A reply's timings (contract.protocol.ResultMessage.timings) into per-model histograms;
    the bot and the worker each keep their own, from their own side of the queue."""
    for histogram, key in (
        (total, "total"),
        (first_token, "first_token"),
        (queue_wait, "queue_wait"),
    ):
        if key in timings:
            histogram.labels(model_id).observe(timings[key])
