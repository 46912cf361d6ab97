"""The worker heartbeat: one typed record, written by workers, read by the bot and the sweeper.

Each worker keeps its entry in the hash `WORKERS_KEY` (field: the worker's name, value:
`WorkerEntry.to_json()`) fresh every `HEARTBEAT_INTERVAL_S` and deletes it on a clean exit. A
crashed worker's entry is not deleted, it goes stale: an entry whose `heartbeat_at` is more than
`STALE_AFTER_S` old belongs to a dead worker. Three missed beats, so one slow Redis round trip
does not declare a busy worker dead.

A worker running several jobs at once (`--concurrency N`) has one entry, for its process; its
N RQ workers ("slots") are named `<name>`, `<name>~1`, ... (`contract.queueing.slot_name`), and
`is_alive` reads a slot's liveness from its process's entry.

Synchronous `redis.Redis` (bytes or decoded replies both work): workers and the sweeper are.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import redis

from contract.keys import WORKERS_KEY

# Mirrors contract.queueing.SLOT_SEPARATOR (this module must not import rq); a test checks both.
SLOT_SEPARATOR = "~"

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 5.0
STALE_AFTER_S = 3 * HEARTBEAT_INTERVAL_S


@dataclass(frozen=True)
class WorkerEntry:
    """One live (or dead) worker as its heartbeat announces it."""

    name: str  # the hash field; also the RQ worker name, so a job's worker_name finds it
    host: str
    pid: int
    models: tuple[str, ...]
    started_at: float  # unix time the worker started
    heartbeat_at: float  # unix time of the last beat
    concurrency: int = 1  # jobs this worker keeps in flight at most (its RQ slots)

    def to_json(self) -> str:
        """The hash value (the name is the field, not repeated here)."""
        data: dict[str, object] = {
            "host": self.host,
            "pid": self.pid,
            "models": list(self.models),
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
        }
        if self.concurrency != 1:
            # Only when it says something: a one-job worker's entry reads as it always did.
            data["concurrency"] = self.concurrency
        return json.dumps(data)

    @classmethod
    def parse(cls, name: bytes | str, raw: bytes | str) -> WorkerEntry:
        """Read one hash entry; ValueError naming the worker when it is not a heartbeat."""
        name = name.decode() if isinstance(name, bytes) else name
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object was expected, got {type(data).__name__}")
            models = data["models"]
            if not isinstance(models, list):
                raise TypeError(f"models must be a list, got {models!r}")
            return cls(
                name=name,
                host=str(data["host"]),
                pid=int(data["pid"]),
                models=tuple(str(m) for m in models),
                started_at=float(data["started_at"]),
                heartbeat_at=float(data["heartbeat_at"]),
                # Entries written before workers had slots carry no concurrency.
                concurrency=int(data.get("concurrency", 1)),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"worker entry {name!r} is not a heartbeat: {exc!r}") from exc

    def is_fresh(self, now: float, stale_after_s: float = STALE_AFTER_S) -> bool:
        return now - self.heartbeat_at <= stale_after_s


def write(conn: redis.Redis, entry: WorkerEntry) -> None:
    conn.hset(WORKERS_KEY, entry.name, entry.to_json())


def remove(conn: redis.Redis, name: str) -> None:
    conn.hdel(WORKERS_KEY, name)


def entry(conn: redis.Redis, name: str) -> WorkerEntry | None:
    """The worker's entry; None when it has none or it is unreadable."""
    raw = conn.hget(WORKERS_KEY, name)
    if raw is None:
        return None
    try:
        return WorkerEntry.parse(name, raw)
    except ValueError as exc:
        log.warning("%s", exc)
        return None


def process_name(worker_name: str) -> str:
    """The heartbeat name of the process an RQ worker (slot) belongs to."""
    return worker_name.split(SLOT_SEPARATOR, 1)[0]


def is_alive(
    conn: redis.Redis, name: str, *, now: float, stale_after_s: float = STALE_AFTER_S
) -> bool:
    """Whether the worker's heartbeat is fresh. A clean exit deletes the entry only after the
    worker's current job, so a worker with no (readable) entry is taken for dead."""
    found = entry(conn, process_name(name))
    return found is not None and found.is_fresh(now, stale_after_s)


def live_workers(
    conn: redis.Redis, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S
) -> list[WorkerEntry]:
    """Workers whose heartbeat is fresh, sorted by name. A malformed entry is some writer's bug,
    logged and skipped: the status must still show the rest."""
    now = time.time() if now is None else now
    live: list[WorkerEntry] = []
    for name, raw in conn.hgetall(WORKERS_KEY).items():
        try:
            parsed = WorkerEntry.parse(name, raw)
        except ValueError as exc:
            log.warning("%s", exc)
            continue
        if parsed.is_fresh(now, stale_after_s):
            live.append(parsed)
    return sorted(live, key=lambda w: w.name)
