"""The bot's Prometheus metrics (`PARLEY_METRICS_PORT`; off by default).

They are counted from the study's own event stream (`parley:events`, contract/events.py), which
a thread tails from the moment the bot starts, so the study core and the Discord layer need no
hooks, and what is counted is exactly what was recorded:

- `parley_battles_started_total{strategy}`;
- `parley_replies_total{model, outcome}`: `ok`, or the failure kind (`bad_audio`, `permanent`,
  `timeout`, `transient`);
- `parley_reply_seconds{model}`, `parley_reply_first_token_seconds{model}`,
  `parley_reply_queue_wait_seconds{model}` (histograms): the worker's timings of each reply
  (`total`, `first_token`, `queue_wait`);
- `parley_votes_total{winner}`;
- `parley_flags_total{flag}`: battle flags as they are raised (`error:<kind>` for a failed side,
  and any flag an event carries in a `flag` / `flags` field);
- `parley_queue_depth{model}` (gauge, read from Redis at each scrape) for every model of the
  models file.

Counters start at zero when the bot starts (Prometheus' `rate()` and `increase()` handle
restarts). Labels never name a participant.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram

from contract.events import BattleStarted, ReplyReceived, StreamEvent, Voted, read_event
from contract.keys import EVENTS
from contract.metrics import (
    FIRST_TOKEN_BUCKETS,
    LATENCY_BUCKETS,
    QUEUE_WAIT_BUCKETS,
    QueueDepthCollector,
    serve_metrics,
)

log = logging.getLogger(__name__)

TAIL_BLOCK_MS = 1000
TAIL_BATCH = 500


class BotMetrics:
    def __init__(
        self,
        *,
        models: Iterable[str],
        conn: redis.Redis | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.models = tuple(models)
        r = self.registry
        self.battles = Counter(
            "parley_battles_started", "Battles started", ["strategy"], registry=r
        )
        self.replies = Counter(
            "parley_replies", "Replies recorded, by outcome", ["model", "outcome"], registry=r
        )
        self.reply_seconds = Histogram(
            "parley_reply_seconds",
            "A reply's job time (worker timings total)",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "parley_reply_first_token_seconds",
            "Job start to the reply's first token",
            ["model"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "parley_reply_queue_wait_seconds",
            "Enqueue to job start",
            ["model"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self.votes = Counter("parley_votes", "Votes", ["winner"], registry=r)
        self.flags = Counter("parley_flags", "Battle flags raised", ["flag"], registry=r)
        for model_id in self.models:
            self.replies.labels(model_id, "ok")
        if conn is not None:
            r.register(QueueDepthCollector(conn, lambda: self.models))

    def observe(self, event: StreamEvent) -> None:
        """Count one event of the stream."""
        if isinstance(event, BattleStarted):
            self.battles.labels(event.strategy.value).inc()
        elif isinstance(event, ReplyReceived):
            result = event.result
            model_id = result.model_id
            if result.ok:
                self.replies.labels(model_id, "ok").inc()
                timings = result.timings
                if "total" in timings:
                    self.reply_seconds.labels(model_id).observe(timings["total"])
                if "first_token" in timings:
                    self.first_token.labels(model_id).observe(timings["first_token"])
                if "queue_wait" in timings:
                    self.queue_wait.labels(model_id).observe(timings["queue_wait"])
            else:
                kind = result.error_kind or "unknown"
                self.replies.labels(model_id, kind).inc()
                self.flags.labels(f"error:{kind}").inc()
        elif isinstance(event, Voted):
            self.votes.labels(event.winner.value).inc()
        for flag in _flags_of(event):
            self.flags.labels(flag).inc()


def _flags_of(event: StreamEvent) -> list[str]:
    """Flags an event carries itself (e.g. a quality check's), whatever its type."""
    found: list[str] = []
    single = getattr(event, "flag", None)
    if isinstance(single, str) and single:
        found.append(single)
    several = getattr(event, "flags", None)
    if isinstance(several, list | tuple):
        found.extend(str(f) for f in several if f)
    return found


class EventTail:
    """Feeds every new entry of the event stream to `BotMetrics.observe`, from a daemon thread."""

    def __init__(self, conn: redis.Redis, metrics: BotMetrics) -> None:
        self.conn = conn
        self.metrics = metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parley-metrics-tail", daemon=True)
        # Only events from now on: the counters describe this bot process.
        self.last_id: bytes | str = "$"

    def start(self) -> EventTail:
        # Fix the starting point before returning, so no event written after start() is missed.
        newest = self.conn.xrevrange(EVENTS, count=1)
        newest_id = newest[0][0] if newest else None
        self.last_id = newest_id if newest_id is not None else "0-0"
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TAIL_BLOCK_MS / 1000 + 5)

    def poll(self, block_ms: int | None = TAIL_BLOCK_MS) -> int:
        """Read and count what is new; returns how many entries were read."""
        replies = self.conn.xread({EVENTS: self.last_id}, count=TAIL_BATCH, block=block_ms) or []
        # redis-py types the reply as the union of its RESP2 and RESP3 shapes; ours is RESP2.
        if not isinstance(replies, list):
            raise TypeError(f"expected a RESP2 stream reply (a list), got {replies!r:.200}")
        read = 0
        for _stream, entries in replies:
            for entry_id, fields in entries:
                self.last_id = entry_id
                read += 1
                try:
                    event = read_event(fields)
                except ValueError as exc:
                    log.warning("metrics: event %r not counted: %s", entry_id, exc)
                    continue
                self.metrics.observe(event)
        return read

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except redis.exceptions.RedisError as exc:
                log.warning("metrics: reading %s failed: %s", EVENTS, exc)
                self._stop.wait(1.0)


@dataclass
class MetricsService:
    """What `start` runs: the HTTP server and the event tail."""

    metrics: BotMetrics
    server: WSGIServer
    tail: EventTail
    conn: redis.Redis

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.tail.stop()
        self.server.shutdown()
        self.conn.close()


def start(redis_url: str, models: Iterable[str], *, port: int, addr: str) -> MetricsService:
    """Serve the bot's /metrics on `addr:port` and start counting events."""
    conn = redis.Redis.from_url(redis_url)
    metrics = BotMetrics(models=models, conn=conn)
    tail = EventTail(conn, metrics).start()
    server = serve_metrics(metrics.registry, port, addr)
    return MetricsService(metrics=metrics, server=server, tail=tail, conn=conn)
