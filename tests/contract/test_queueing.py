"""contract.queueing against a real Redis and real RQ: what Parley asks of RQ, in one place.

A job is taken and abandoned the way rq's own worker code leaves it (tests.reliability.faults_rq
calls rq's dequeue, which LMOVEs the job into the queue's intermediate list); jobs run in a real
`ParleyWorker` in burst mode, in this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry

from contract import queueing
from contract.keys import RESULTS_STREAM, audio_key, queue_name
from contract.protocol import JobRequest, ResultMessage
from contract.queueing import JobState
from tests.reliability.faults_rq import start_job_and_die, take_job_and_die


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def request(battle_id: str, model_id: str = "m1", side: str = "a") -> JobRequest:
    return JobRequest(
        battle_id=battle_id,
        side=side,  # type: ignore[arg-type]
        model_id=model_id,
        audio_key=audio_key(battle_id),
        audio_format="ogg",
        max_audio_seconds=30.0,
    )


def snapshot(conn: redis.Redis, job_id: str) -> queueing.JobSnapshot:
    found = queueing.fetch_job(conn, job_id)
    assert found is not None, job_id
    return found


def test_enqueue_answer_sets_the_job_up(conn: redis.Redis) -> None:
    before = time.time()
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=42, retries=2)
    job = Job.fetch(job_id, connection=conn)
    assert job.origin == "model:m1" == queue_name("m1")
    assert job.func_name == "workers.jobs.answer"
    assert job.timeout == 42
    assert job.retries_left == 2
    assert job.retry_intervals == [0]
    assert job.result_ttl == queueing.RESULT_TTL_S
    assert job.failure_ttl == queueing.FAILURE_TTL_S
    callback = job.failure_callback
    assert callback is not None
    assert f"{callback.__module__}.{callback.__name__}" == "workers.jobs.report_failure"
    assert job.description == "m1 battle b1 side a"
    (payload,) = job.args
    assert payload["battle_id"] == "b1"
    assert payload["enqueued_at"] >= before
    # An enqueued_at the caller set is kept; no retries: no Retry at all.
    kept = queueing.enqueue_answer(
        conn, JobRequest(**{**request("b2").to_dict(), "enqueued_at": 5.0}), timeout_s=1, retries=0
    )
    assert Job.fetch(kept, connection=conn).args[0]["enqueued_at"] == 5.0
    assert Job.fetch(kept, connection=conn).retries_left is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout_s": 0}, "timeout_s must be positive, got 0"),
        ({"timeout_s": 5, "retries": -1}, "retries must be >= 0, got -1"),
        ({"timeout_s": 5, "retry_interval_s": -2}, "retry_interval_s must be >= 0, got -2"),
    ],
)
def test_enqueue_answer_refuses_bad_settings(
    conn: redis.Redis, options: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        queueing.enqueue_answer(conn, request("b1"), **options)
    assert conn.keys("rq:job:*") == []


def test_waiting_jobs_depths_heads_and_positions(conn: redis.Redis) -> None:
    first = queueing.enqueue_answer(conn, request("b1"), timeout_s=30)
    second = queueing.enqueue_answer(conn, request("b2"), timeout_s=30)
    other = queueing.enqueue_answer(conn, request("b3", "m2"), timeout_s=30)
    assert [queueing.queue_depth(conn, m) for m in ("m1", "m2", "m3")] == [2, 1, 0]
    assert [queueing.job_position(conn, j) for j in (first, second, other)] == [0, 1, 0]
    assert queueing.job_position(conn, "no-such-job") is None
    assert queueing.fetch_job(conn, "no-such-job") is None
    head = queueing.queue_head(conn, "m1")
    assert head is not None
    assert head.job_id == first
    assert queueing.queue_head(conn, "m3") is None

    waiting = snapshot(conn, second)
    assert waiting.state is JobState.QUEUED
    assert (waiting.queue, waiting.position, waiting.in_queue) == ("model:m1", 1, True)
    assert waiting.waiting
    assert not waiting.taken
    assert (waiting.worker_name, waiting.started_at, waiting.ended_at) == (None, None, None)
    assert waiting.enqueued_at is not None
    assert abs(waiting.enqueued_at - time.time()) < 30
    assert (waiting.timeout, waiting.retries_left) == (30, 1)
    assert waiting.request() == JobRequest(
        **{**request("b2").to_dict(), "enqueued_at": waiting.args[0]["enqueued_at"]}
    )


def test_a_job_taken_by_a_dying_worker_is_in_no_queue(conn: redis.Redis) -> None:
    """rq's dequeue LMOVEs the job into the queue's intermediate list; a worker SIGKILLed before
    it marks the job started leaves it there, still `queued`."""
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30)
    behind = queueing.enqueue_answer(conn, request("b2"), timeout_s=30)
    taken = take_job_and_die(conn, queue_name("m1"), worker="dying")
    assert taken.id == job_id
    found = snapshot(conn, job_id)
    assert found.state is JobState.QUEUED
    assert (found.position, found.in_queue) == (None, False)
    assert found.taken
    assert not found.waiting
    assert queueing.job_position(conn, behind) == 0
    assert queueing.queue_depth(conn, "m1") == 1


def test_a_job_popped_by_a_multi_queue_worker_is_in_no_list_at_all(conn: redis.Redis) -> None:
    """A worker serving several queues takes jobs with LPOP (rq's `Queue.lpop`): nothing keeps
    the job id once it dies."""
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30)
    queueing.enqueue_answer(conn, request("b2", "m2"), timeout_s=30)
    worker = SimpleWorker(
        [Queue(queue_name("m1"), connection=conn), Queue(queue_name("m2"), connection=conn)],
        connection=conn,
    )
    dequeued = worker.dequeue_job_and_maintain_ttl(timeout=1)
    assert dequeued is not None
    assert dequeued[0].id == job_id
    assert conn.llen(Queue(queue_name("m1"), connection=conn).intermediate_queue_key) == 0
    assert snapshot(conn, job_id).taken


def test_started_job_snapshot(conn: redis.Redis) -> None:
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30)
    start_job_and_die(conn, queue_name("m1"), worker="w-1", heartbeat_at=None)
    found = snapshot(conn, job_id)
    assert found.state is JobState.STARTED
    assert (found.worker_name, found.position, found.waiting, found.taken) == (
        "w-1",
        None,
        False,
        False,
    )
    assert found.started_at is not None
    assert abs(found.started_at - time.time()) < 30


def test_retire_cancels_a_waiting_job(conn: redis.Redis) -> None:
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30)
    assert queueing.retire(conn, job_id, "too long") is JobState.CANCELED
    assert snapshot(conn, job_id).state is JobState.CANCELED
    assert queueing.queue_depth(conn, "m1") == 0
    # Twice is harmless; a job that no longer exists is no error.
    assert queueing.retire(conn, job_id, "again") is JobState.CANCELED
    assert queueing.retire(conn, "no-such-job", "gone") is None


def test_retire_fails_a_taken_job_for_good(conn: redis.Redis) -> None:
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30, retries=1)
    take_job_and_die(conn, queue_name("m1"), worker="dying")
    queue = Queue(queue_name("m1"), connection=conn)
    assert queueing.retire(conn, job_id, "its worker died") is JobState.FAILED
    found = snapshot(conn, job_id)
    assert (found.state, found.retries_left) == (JobState.FAILED, 0)
    assert conn.lrange(queue.intermediate_queue_key, 0, -1) == []
    assert job_id in FailedJobRegistry(queue.name, connection=conn).get_job_ids()
    # RQ's own maintenance (a live worker cleaning the queue) neither fails nor retries it again.
    cleaner = SimpleWorker([queue], connection=conn)
    queue.intermediate_queue.cleanup(cleaner, queue)
    StartedJobRegistry(queue.name, connection=conn).cleanup(time.time() + 3600)
    assert snapshot(conn, job_id).state is JobState.FAILED
    assert queue.count == 0


def test_retire_fails_a_started_job_and_clears_its_execution(conn: redis.Redis) -> None:
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30, retries=1)
    start_job_and_die(conn, queue_name("m1"), worker="dead", heartbeat_at=None)
    registry = StartedJobRegistry(queue_name("m1"), connection=conn)
    assert registry.get_job_ids(cleanup=False) == [job_id]
    assert queueing.retire(conn, job_id, "dead worker") is JobState.FAILED
    assert registry.get_job_ids(cleanup=False) == []
    registry.cleanup(time.time() + 3600)
    assert snapshot(conn, job_id).state is JobState.FAILED
    assert queueing.queue_depth(conn, "m1") == 0


def test_a_real_worker_runs_the_job_and_the_failure_callback(conn: redis.Redis) -> None:
    """A ParleyWorker in burst mode, in this process, with no models loaded: the job fails
    permanently (no retry despite retries=1) and the failure callback publishes its result."""
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30, retries=1)
    worker = queueing.build_worker(conn, ["m1"], job_timeout_s=10, name="parley-test-1")
    assert queueing.run_worker(worker, burst=True)
    found = snapshot(conn, job_id)
    assert found.state is JobState.FAILED
    assert found.worker_name == "parley-test-1"
    assert found.started_at is not None
    assert found.ended_at is not None
    assert found.started_at <= found.ended_at
    assert found.retries_left == 0
    [(_, fields)] = conn.xrange(RESULTS_STREAM)
    result = ResultMessage.from_fields(fields)
    assert (result.battle_id, result.side, result.job_id) == ("b1", "a", job_id)
    assert result.error_kind == "permanent"
    assert "no models are loaded" in (result.error or "")


def test_the_worker_caps_job_timeouts_and_finished_jobs_read_back(conn: redis.Redis) -> None:
    queue = Queue(queue_name("sleepy"), connection=conn)
    slow = queue.enqueue("time.sleep", 5, job_timeout=60)
    quick = queue.enqueue("time.sleep", 0, job_timeout=60)
    worker = queueing.build_worker(conn, ["sleepy"], job_timeout_s=1)
    started = time.monotonic()
    queueing.run_worker(worker, burst=True)
    assert time.monotonic() - started < 4
    assert (snapshot(conn, slow.id).state, snapshot(conn, slow.id).timeout) == (JobState.FAILED, 1)
    assert snapshot(conn, quick.id).state is JobState.FINISHED
    with pytest.raises(ValueError, match="job_timeout_s must be positive, got 0"):
        queueing.build_worker(conn, ["sleepy"], job_timeout_s=0)
    with pytest.raises(ValueError, match="at least one model"):
        queueing.build_worker(conn, [], job_timeout_s=5)


def test_a_damaged_job_record_is_named(conn: redis.Redis) -> None:
    job_id = queueing.enqueue_answer(conn, request("b1"), timeout_s=30)
    conn.hset(f"rq:job:{job_id}", "data", b"\x80 not a pickle")
    with pytest.raises(queueing.JobUnreadable, match=job_id):
        queueing.fetch_job(conn, job_id)


def test_snapshot_request_refuses_jobs_without_one() -> None:
    bare = queueing.JobSnapshot(
        job_id="j1",
        state=JobState.QUEUED,
        queue="model:m1",
        position=0,
        worker_name=None,
        enqueued_at=None,
        started_at=None,
        ended_at=None,
        timeout=None,
        args=(5,),
        retries_left=None,
    )
    with pytest.raises(ValueError, match="job j1 carries no job request"):
        bare.request()
