"""bot.dispatch against a real Redis: jobs land on the models' RQ queues, and status reads back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bot import dispatch
from contract import heartbeat
from contract.heartbeat import WorkerEntry
from contract.keys import WORKERS_KEY, audio_key
from contract.protocol import JobRequest


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_battle_requests_one_per_side() -> None:
    requests = dispatch.battle_requests(
        "0123456789abcdef",
        {"a": "m1", "b": "m2"},
        audio_format="ogg",
        max_audio_seconds=60.0,
        now=5.0,
    )
    assert requests == [
        JobRequest(
            "0123456789abcdef", "a", "m1", audio_key("0123456789abcdef"), "ogg", 60.0, [], 5.0
        ),
        JobRequest(
            "0123456789abcdef", "b", "m2", audio_key("0123456789abcdef"), "ogg", 60.0, [], 5.0
        ),
    ]
    with pytest.raises(ValueError, match="exactly the sides"):
        dispatch.battle_requests("x", {"a": "m1"}, audio_format="ogg", max_audio_seconds=1, now=0)


def test_enqueue_positions_depths_and_oldest(conn: redis.Redis) -> None:
    first = dispatch.enqueue_battle(
        conn,
        dispatch.battle_requests(
            "00000000000000a1",
            {"a": "m1", "b": "m2"},
            audio_format="ogg",
            max_audio_seconds=60.0,
            now=1.0,
        ),
        timeout_s=30,
    )
    second = dispatch.enqueue_battle(
        conn,
        dispatch.battle_requests(
            "00000000000000a2",
            {"a": "m1", "b": "m3"},
            audio_format="ogg",
            max_audio_seconds=60.0,
            now=2.0,
        ),
        timeout_s=30,
    )
    assert len(first) == len(second) == 2
    assert dispatch.queue_position(conn, first) == 0
    # Behind the first battle's m1 job; m3's queue was empty, the slower queue counts.
    assert dispatch.queue_position(conn, second) == 1
    assert dispatch.queue_depths(conn, ["m1", "m2", "m3", "m4"]) == {
        "m1": 2,
        "m2": 1,
        "m3": 1,
        "m4": 0,
    }
    oldest = dispatch.oldest_waiting(conn, ["m1", "m2", "m3", "m4"])
    assert oldest is not None
    assert oldest.job_id in first
    assert oldest.waited_s >= 0
    assert dispatch.oldest_waiting(conn, ["m4"]) is None
    assert dispatch.queue_position(conn, ["no-such-job"]) is None


def test_live_workers_drop_stale_and_malformed(conn: redis.Redis) -> None:
    w1 = WorkerEntry("w1", "gpu1", 11, ("m1",), started_at=1.0, heartbeat_at=100.0)
    heartbeat.write(conn, w1)
    heartbeat.write(conn, WorkerEntry("w0", "gpu0", 10, ("m2",), started_at=1.0, heartbeat_at=10.0))
    conn.hset(WORKERS_KEY, "bad", b"not json")
    workers = dispatch.live_workers(conn, now=120.0, stale_after_s=60.0)
    assert workers == [w1]
    assert (workers[0].name, workers[0].host, workers[0].models) == ("w1", "gpu1", ("m1",))
