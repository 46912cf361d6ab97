"""A real RQ round trip: `python -m workers` in a subprocess, jobs through Redis, results on the
stream. The model is an openai_compatible backend whose server is a local fake, so no torch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis
from rq import Queue
from rq.job import Job

from contract import queueing
from contract.audio import AudioError
from contract.heartbeat import live_workers
from contract.keys import PARTIALS_STREAM, RESULTS_STREAM, WORKERS_KEY, audio_key
from contract.protocol import JobRequest, ResultMessage
from contract.queueing import JobTimeout, enqueue_answer
from devstack.fake_apis import Behaviour, FakeApiServer
from tests.workers.conftest import write_models
from workers.backends.base import BackendError
from workers.jobs import PartialPublisher, failure_kind

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def models_toml(base_url: str) -> str:
    def entry(model_id: str, model: str, retries: int = 0) -> str:
        return (
            f'[models.{model_id}]\nbackend = "openai_compatible"\n'
            f'[models.{model_id}.settings]\nmodel = "{model}"\nbase_url = "{base_url}"\n'
            f"retries = {retries}\nbackoff_s = 0.0\ntimeout_s = 30\n"
        )

    return "\n".join(
        [
            entry("echo", "audio-echo"),
            entry("slow", "audio-slow"),
            entry("broken", "audio-broken"),
        ]
    )


@pytest.fixture
def fake_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer(
        api_key=None, models=("audio-echo", "audio-slow", "audio-broken"), chunk_delay_s=0.04
    ).start()
    server.slow_models["audio-slow"] = 10.0
    server.broken_models.add("audio-broken")
    yield server
    server.stop()


def start_worker(
    tmp_path: Path, redis_url: str, models: Path, serve: str, *extra: str
) -> subprocess.Popen:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PARLEY_MODELS": str(models),
        "PARLEY_JOB_TIMEOUT": "30",
        "PARLEY_LOG_LEVEL": "INFO",
    }
    log = (tmp_path / f"worker-{serve}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "workers", "--serve", serve, *extra],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for(
    predicate: Callable[[], T | None], timeout: float, what: str, log: Path | None = None
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n{tail}")


def state(client: redis.Redis, job_id: str) -> str | None:
    snapshot = queueing.fetch_job(client, job_id)
    return None if snapshot is None else snapshot.state.value


def read_results(client: redis.Redis) -> dict[str, ResultMessage]:
    messages = [ResultMessage.from_fields(f) for _, f in client.xrange(RESULTS_STREAM)]
    return {m.battle_id: m for m in messages}


def results_for(client: redis.Redis, battle_ids: set[str]) -> dict[str, ResultMessage] | None:
    results = read_results(client)
    return results if battle_ids <= set(results) else None


def request(battle_id: str, model_id: str, **kwargs: object) -> JobRequest:
    return JobRequest(
        battle_id=battle_id,
        side="a",
        model_id=model_id,
        audio_key=audio_key(battle_id),
        audio_format="ogg",
        max_audio_seconds=30.0,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.slow
# The same round trip with one job at a time (the main thread's SimpleWorker) and with four
# slots in threads: failures, timeouts, retries and the clean stop behave the same.
@pytest.mark.parametrize("concurrency", [1, 4])
def test_worker_round_trip_successes_and_every_failure(
    tmp_path: Path,
    redis_url: str,
    fake_server: FakeApiServer,
    speech_clips: dict[str, bytes],
    concurrency: int,
) -> None:
    client = redis.Redis.from_url(redis_url)
    models = write_models(tmp_path / "models.toml", models_toml(fake_server.openai_url))
    log = tmp_path / "worker-echo,slow,broken.log"
    worker = start_worker(
        tmp_path, redis_url, models, "echo,slow,broken", "--concurrency", str(concurrency)
    )
    try:
        workers = wait_for(lambda: live_workers(client), 30, "the worker's heartbeat", log)
        (entry,) = workers
        assert entry.models == ("echo", "slow", "broken")
        assert entry.pid == worker.pid
        assert entry.concurrency == concurrency

        # 1. A good job: reply, timings, partial text on the partials stream.
        client.set(audio_key("ok"), speech_clips["ogg"])
        history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}]
        job_id = enqueue_answer(client, request("ok", "echo", history=history), timeout_s=20)
        ok = wait_for(lambda: read_results(client).get("ok"), 20, "the first result", log)
        assert ok.ok
        assert ok.reply == FakeApiServer.reply_for(2.4, 2)
        assert ok.job_id == job_id
        assert ok.worker is not None
        assert ok.worker.startswith("parley-")
        for key in ("queue_wait", "decode_audio", "first_token", "model", "total", "load"):
            assert key in ok.timings, key
        assert ok.timings["first_token"] <= ok.timings["total"]
        partials = client.xrange(PARTIALS_STREAM)
        assert partials
        assert partials[0][1][b"battle_id"] == b"ok"
        assert ok.reply.startswith(partials[-1][1][b"text"].decode().strip())
        # The result goes on the stream inside the job, before RQ marks the job finished.
        wait_for(lambda: state(client, job_id) == "finished", 10, "job finished", log)

        # 2. Every permanent failure ends in exactly one failure result, without retries.
        client.set(audio_key("junk"), b"this is a text file, not a recording\n" * 50)
        client.set(audio_key("broken"), speech_clips["ogg"])
        client.set(audio_key("slow"), speech_clips["ogg"])
        jobs = {
            "junk": enqueue_answer(client, request("junk", "echo"), timeout_s=20, retries=2),
            "gone": enqueue_answer(client, request("gone", "echo"), timeout_s=20, retries=2),
            "broken": enqueue_answer(client, request("broken", "broken"), timeout_s=20, retries=2),
            "slow": enqueue_answer(client, request("slow", "slow"), timeout_s=1, retries=2),
        }
        results = wait_for(
            lambda: results_for(client, set(jobs)),
            30,
            "four failure results",
            log,
        )
        assert results["junk"].error_kind == "bad_audio"
        assert "does not look like audio" in (results["junk"].error or "")
        assert results["gone"].error_kind == "bad_audio"
        assert "no longer available" in (results["gone"].error or "")
        assert results["broken"].error_kind == "permanent"
        assert "HTTP 400: The model crashed." in (results["broken"].error or "")
        assert results["slow"].error_kind == "timeout"
        assert "job timeout (1 s)" in (results["slow"].error or "")
        assert all(r.reply is None for k, r in results.items() if k != "ok")
        for name, failed in jobs.items():
            assert state(client, failed) == "failed", name
        assert client.xlen(RESULTS_STREAM) == 5

        # 3. A transient failure is retried by RQ and then succeeds: only the success is published.
        fake_server.script = [Behaviour(503)]
        client.set(audio_key("flaky"), speech_clips["mp3"])
        flaky = enqueue_answer(client, request("flaky", "echo"), timeout_s=20, retries=1)
        done = wait_for(lambda: read_results(client).get("flaky"), 20, "the retried result", log)
        assert done.ok
        assert state(client, flaky) == "finished"
        # ... and with no retries left, it is a transient failure result.
        fake_server.script = [Behaviour(503)]
        client.set(audio_key("flaky2"), speech_clips["mp3"])
        enqueue_answer(client, request("flaky2", "echo"), timeout_s=20, retries=0)
        failed = wait_for(lambda: read_results(client).get("flaky2"), 20, "flaky2", log)
        assert failed.error_kind == "transient"
        assert "HTTP 503" in (failed.error or "")
        assert client.xlen(RESULTS_STREAM) == 7

        # 4. A clean stop removes the worker from the live list.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        assert client.hlen(WORKERS_KEY) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        client.close()


def test_worker_refuses_unknown_model_ids(tmp_path: Path, redis_url: str) -> None:
    models = write_models(tmp_path / "models.toml", models_toml("http://127.0.0.1:9/v1"))
    worker = start_worker(tmp_path, redis_url, models, "echo,nope")
    assert worker.wait(30) == 2
    log = (tmp_path / "worker-echo,nope.log").read_text()
    assert "unknown model id(s) 'nope'" in log
    assert "known: echo, slow, broken" in log


def test_partials_are_throttled(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    now = [100.0]
    publish = PartialPublisher(client, request("b1", "echo"), clock=lambda: now[0])
    for step, text in enumerate(["a", "a b", "a b c", "a b c d", "a b c d e"]):
        now[0] = 100.0 + 0.2 * step  # 0.0, 0.2, 0.4, 0.6, 0.8 s
        publish(text)
    sent = [fields[b"text"].decode() for _, fields in client.xrange(PARTIALS_STREAM)]
    assert sent == ["a", "a b c d"]  # first at once, then only after >= 0.5 s
    assert publish.first_at == 100.0
    client.close()


def test_enqueue_answer_sets_the_job_up(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    job = Job.fetch(
        enqueue_answer(client, request("b2", "echo"), timeout_s=42, retries=2), connection=client
    )
    assert job.origin == "model:echo"
    assert job.func_name == "workers.jobs.answer"
    assert job.timeout == 42
    assert job.retries_left == 2
    callback = Job.fetch(job.id, connection=client).failure_callback
    assert callback is not None
    assert f"{callback.__module__}.{callback.__name__}" == "workers.jobs.report_failure"
    (payload,) = job.args
    assert payload["battle_id"] == "b2"
    assert payload["enqueued_at"] > 0
    assert json.loads(json.dumps(payload)) == payload  # plain data
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        enqueue_answer(client, request("b3", "echo"), timeout_s=0)
    client.close()


def test_worker_caps_job_timeouts_at_its_setting(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = Queue("model:sleepy", connection=client)
    job = queue.enqueue("time.sleep", 5, job_timeout=60)
    worker = queueing.build_worker(client, ["sleepy"], job_timeout_s=1)
    started = time.monotonic()
    queueing.run_worker(worker, burst=True)
    assert time.monotonic() - started < 4
    job.refresh()
    assert job.get_status() == "failed"
    assert job.timeout == 1
    latest = job.latest_result()
    assert latest is not None
    assert "JobTimeoutException" in (latest.exc_string or "")
    with pytest.raises(ValueError, match="job_timeout_s must be positive"):
        queueing.build_worker(client, ["sleepy"], job_timeout_s=0)
    client.close()


def test_worker_without_redis_fails_before_loading_and_hides_the_password(tmp_path: Path) -> None:
    models = write_models(tmp_path / "models.toml", models_toml("http://127.0.0.1:9/v1"))
    worker = start_worker(tmp_path, "redis://:hunter2-password@127.0.0.1:1/0", models, "echo")
    assert worker.wait(30) == 2
    log = (tmp_path / "worker-echo.log").read_text()
    assert "cannot reach Redis at 127.0.0.1:1" in log
    assert "hunter2" not in log


def test_failure_kind_golden() -> None:
    assert failure_kind(JobTimeout("late")) == "timeout"
    assert failure_kind(AudioError("silent", "quiet")) == "bad_audio"
    assert failure_kind(BackendError("503", transient=True)) == "transient"
    assert failure_kind(BackendError("400")) == "permanent"
    assert failure_kind(RuntimeError("bug")) == "permanent"
    assert failure_kind(None) == "permanent"
