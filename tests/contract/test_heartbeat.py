"""The worker heartbeat record: golden JSON, parsing errors, freshness, and the writer thread."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from contract import heartbeat
from contract.heartbeat import HEARTBEAT_INTERVAL_S, STALE_AFTER_S, WorkerEntry
from contract.keys import WORKERS_KEY
from workers.worker import Heartbeat

ENTRY = WorkerEntry("parley-gpu1-7", "gpu1", 7, ("m1", "m2"), started_at=10.0, heartbeat_at=100.0)


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_golden_json_and_round_trip() -> None:
    assert json.loads(ENTRY.to_json()) == {
        "host": "gpu1",
        "pid": 7,
        "models": ["m1", "m2"],
        "started_at": 10.0,
        "heartbeat_at": 100.0,
    }
    assert WorkerEntry.parse(b"parley-gpu1-7", ENTRY.to_json().encode()) == ENTRY
    assert WorkerEntry.parse("parley-gpu1-7", ENTRY.to_json()) == ENTRY


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"host": "h", "pid": 1, "models": [], "started_at": 0}',
        b'{"host": "h", "pid": 1, "models": "m1", "started_at": 0, "heartbeat_at": 1}',
        b'{"host": "h", "pid": "x", "models": [], "started_at": 0, "heartbeat_at": 1}',
    ],
)
def test_parse_names_the_worker(raw: bytes) -> None:
    with pytest.raises(ValueError, match="worker entry 'w9' is not a heartbeat"):
        WorkerEntry.parse(b"w9", raw)


def test_freshness_thresholds() -> None:
    assert STALE_AFTER_S == 3 * HEARTBEAT_INTERVAL_S == 15.0
    assert ENTRY.is_fresh(100.0 + STALE_AFTER_S)
    assert not ENTRY.is_fresh(100.0 + STALE_AFTER_S + 0.01)
    assert ENTRY.is_fresh(150.0, stale_after_s=60.0)


def test_live_workers_and_is_alive(conn: redis.Redis) -> None:
    stale = WorkerEntry("w0", "gpu0", 1, ("m3",), started_at=0.0, heartbeat_at=80.0)
    heartbeat.write(conn, ENTRY)
    heartbeat.write(conn, stale)
    conn.hset(WORKERS_KEY, "bad", b"{not json")
    assert heartbeat.live_workers(conn, now=110.0) == [ENTRY]
    assert heartbeat.live_workers(conn, now=110.0, stale_after_s=60.0) == [ENTRY, stale]
    assert heartbeat.is_alive(conn, ENTRY.name, now=110.0)
    assert not heartbeat.is_alive(conn, "w0", now=110.0)
    assert not heartbeat.is_alive(conn, "bad", now=110.0), "an unreadable entry is no life sign"
    assert not heartbeat.is_alive(conn, "nobody", now=110.0)
    assert heartbeat.entry(conn, ENTRY.name) == ENTRY
    heartbeat.remove(conn, ENTRY.name)
    assert heartbeat.entry(conn, ENTRY.name) is None


def test_the_worker_thread_beats_and_removes_its_entry(conn: redis.Redis) -> None:
    beating = Heartbeat(conn, "parley-test-1", ["m1"], interval_s=0.05).start()
    try:
        first = heartbeat.entry(conn, "parley-test-1")
        assert first is not None
        assert first.models == ("m1",)
        time.sleep(0.3)
        later = heartbeat.entry(conn, "parley-test-1")
        assert later is not None
        assert later.heartbeat_at > first.heartbeat_at
        assert later.started_at == first.started_at
        assert [w.name for w in heartbeat.live_workers(conn)] == ["parley-test-1"]
    finally:
        beating.stop()
    assert conn.hlen(WORKERS_KEY) == 0
    with pytest.raises(ValueError, match="interval_s must be positive, got 0"):
        Heartbeat(conn, "x", [], interval_s=0)
