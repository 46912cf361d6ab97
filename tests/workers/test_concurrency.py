"""`python -m workers --concurrency N`: up to N jobs in flight in one worker process.

The throughput test is the issue's: a local OpenAI-compatible server with a fixed 1 s latency
per answer, 8 battles (16 jobs, two models) enqueued at once on one worker with 16 slots: all
16 replies within well under 2 s, where one job at a time would take 16 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from contract import heartbeat, queueing
from contract.heartbeat import WorkerEntry, live_workers
from contract.keys import RESULTS_STREAM, audio_key
from contract.protocol import JobRequest, ResultMessage
from contract.queueing import SLOT_SEPARATOR, enqueue_answer, slot_name
from devstack.fake_apis import FakeApiServer
from tests.workers.conftest import write_models
from tests.workers.test_rq_roundtrip import read_results, start_worker, wait_for
from workers.backends.base import ModelGuard

LATENCY_S = 1.0


def test_slot_names_lead_back_to_the_process_heartbeat(redis_url: str) -> None:
    assert heartbeat.SLOT_SEPARATOR == SLOT_SEPARATOR
    assert slot_name("parley-gpu1-42", 0) == "parley-gpu1-42"
    assert slot_name("parley-gpu1-42", 3) == "parley-gpu1-42~3"
    assert heartbeat.process_name("parley-gpu1-42~3") == "parley-gpu1-42"
    assert heartbeat.process_name("parley-gpu1-42") == "parley-gpu1-42"
    with pytest.raises(ValueError, match="slot must be >= 0"):
        slot_name("x", -1)
    conn = redis.Redis.from_url(redis_url)
    now = time.time()
    entry = WorkerEntry("parley-gpu1-42", "gpu1", 42, ("a",), 0.0, now, concurrency=4)
    heartbeat.write(conn, entry)
    assert heartbeat.entry(conn, "parley-gpu1-42") == entry
    assert heartbeat.is_alive(conn, "parley-gpu1-42~3", now=now)
    assert not heartbeat.is_alive(conn, "parley-gpu1-42~3", now=now + 60)
    assert not heartbeat.is_alive(conn, "parley-gpu1-43~1", now=now)
    conn.close()


def test_build_slots_refuses_bad_concurrency(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
        queueing.build_slots(conn, ["a"], job_timeout_s=10, name="w", concurrency=0)
    with pytest.raises(ValueError, match="at least one model"):
        queueing.build_slots(conn, [], job_timeout_s=10, name="w", concurrency=2)
    slots = queueing.build_slots(conn, ["a", "b"], job_timeout_s=10, name="w", concurrency=3)
    assert [w.name for w in slots.workers] == ["w", "w~1", "w~2"]
    assert slots.workers[2].queue_names() == ["model:a", "model:b"]
    conn.close()


def most_inside_at_once(guard: ModelGuard, jobs: int = 4) -> int:
    inside = 0
    most = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal inside, most
        with guard:
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.1)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=job) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    return most


def test_a_model_guard_lets_one_job_in_at_a_time() -> None:
    """In-process models (not `concurrent`) answer one job at a time, whatever N is."""
    assert most_inside_at_once(ModelGuard(concurrent=False)) == 1
    assert most_inside_at_once(ModelGuard(concurrent=True)) == 4
    assert ModelGuard(concurrent=False).exclusive
    assert not ModelGuard(concurrent=True).exclusive


@pytest.fixture
def slow_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer(
        api_key=None, models=("audio-a", "audio-b"), answer_delay_s=LATENCY_S
    ).start()
    yield server
    server.stop()


def two_models(base_url: str) -> str:
    return "\n".join(
        f'[models.{mid}]\nbackend = "openai_compatible"\n[models.{mid}.settings]\n'
        f'model = "audio-{mid}"\nbase_url = "{base_url}"\nretries = 0\ntimeout_s = 30\n'
        for mid in ("a", "b")
    )


@pytest.mark.slow
def test_eight_battles_at_once_take_one_latency_not_eight(
    tmp_path: Path, redis_url: str, slow_server: FakeApiServer, speech_clips: dict[str, bytes]
) -> None:
    client = redis.Redis.from_url(redis_url)
    models = write_models(tmp_path / "models.toml", two_models(slow_server.openai_url))
    log = tmp_path / "worker-a,b.log"
    worker = start_worker(tmp_path, redis_url, models, "a,b", "--concurrency", "16")
    try:
        (entry,) = wait_for(lambda: live_workers(client), 30, "the worker's heartbeat", log)
        assert entry.concurrency == 16
        # Every slot registered with RQ and waiting on the queues before the clock starts.
        wait_for(lambda: client.scard("rq:workers") >= 16 or None, 30, "16 RQ slot workers", log)
        battles = [f"burst{i}" for i in range(8)]
        for battle_id in battles:
            client.set(audio_key(battle_id), speech_clips["ogg"])
        started = time.monotonic()
        for battle_id in battles:
            for side, model_id in (("a", "a"), ("b", "b")):
                request = JobRequest(
                    battle_id=battle_id,
                    side=side,  # type: ignore[arg-type]
                    model_id=model_id,
                    audio_key=audio_key(battle_id),
                    audio_format="ogg",
                    max_audio_seconds=30.0,
                )
                enqueue_answer(client, request, timeout_s=20, retries=0)

        def all_sixteen() -> list[ResultMessage] | None:
            found = [
                message
                for _, fields in client.xrange(RESULTS_STREAM)
                if (message := ResultMessage.from_fields(fields)).battle_id in battles
            ]
            return found if len(found) == 16 else None

        results = wait_for(all_sixteen, 20, "16 results", log)
        elapsed = time.monotonic() - started
        assert all(r.ok for r in results), [r.error for r in results]
        print(f"8 battles (16 jobs, {LATENCY_S:g} s each) on one worker: {elapsed:.2f} s")
        assert elapsed < 2.0, f"8 battles took {elapsed:.2f} s; concurrency is not working"
        # The fake saw the requests side by side: 16 answers, one worker process.
        assert len(slow_server.generation_requests()) == 16
        workers = {r.worker or "" for r in results}
        assert len(workers) > 1
        assert {heartbeat.process_name(w) for w in workers} == {entry.name}
        assert set(read_results(client)) >= set(battles)
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(20)
        client.close()
