"""Prometheus metrics: the bot's (counted from the event stream) and the worker's (recorded by
the job), each scraped over HTTP as Prometheus would."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import redis

from bot import metrics as bot_metrics
from bot.metrics import BotMetrics, EventTail
from contract.events import BattleStarted, ReplyReceived, Voted
from contract.keys import EVENTS, audio_key
from contract.protocol import JobRequest, ResultMessage
from contract.queueing import enqueue_answer
from contract.records import Strategy, Winner
from devstack.fake_apis import FakeApiServer
from devstack.redis_servers import free_port
from tests.workers.conftest import write_models
from tests.workers.test_rq_roundtrip import models_toml, read_results, start_worker, wait_for
from workers.metrics import WorkerMetrics


def started(battle_id: str = "b1") -> BattleStarted:
    return BattleStarted(
        battle_id=battle_id,
        participant="p" * 16,
        model_a="a",
        model_b="b",
        strategy=Strategy.BALANCED,
        created_at=1.0,
        audio_ref="audio/b1.ogg",
        audio_format="ogg",
        audio_seconds=2.0,
        audio_bytes=100,
        at=1.0,
    )


def reply(model_id: str, *, error_kind: str | None = None) -> ReplyReceived:
    result = ResultMessage(
        battle_id="b1",
        side="a",
        model_id=model_id,
        reply=None if error_kind else "hello",
        transcript=None,
        timings={} if error_kind else {"total": 1.2, "first_token": 0.3, "queue_wait": 0.04},
        error="boom" if error_kind else None,
        error_kind=error_kind,  # type: ignore[arg-type]
    )
    return ReplyReceived(result=result, participant="p" * 16, at=2.0)


def sample(metrics: BotMetrics | WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_bot_metrics_count_events_golden() -> None:
    metrics = BotMetrics(models=["a", "b"])
    assert sample(metrics, "parley_replies_total", model="a", outcome="ok") == 0.0
    for event in (
        started(),
        reply("a"),
        reply("b", error_kind="timeout"),
        Voted(battle_id="b1", participant="p" * 16, winner=Winner.MODEL_A, at=3.0),
        Voted(battle_id="b2", participant="p" * 16, winner=Winner.BOTH_BAD, at=3.0),
    ):
        metrics.observe(event)
    assert sample(metrics, "parley_battles_started_total", strategy="balanced") == 1.0
    assert sample(metrics, "parley_replies_total", model="a", outcome="ok") == 1.0
    assert sample(metrics, "parley_replies_total", model="b", outcome="timeout") == 1.0
    assert sample(metrics, "parley_flags_total", flag="error:timeout") == 1.0
    assert sample(metrics, "parley_votes_total", winner="model_a") == 1.0
    assert sample(metrics, "parley_votes_total", winner="tie (bothbad)") == 1.0
    assert sample(metrics, "parley_reply_seconds_count", model="a") == 1.0
    assert sample(metrics, "parley_reply_seconds_sum", model="a") == pytest.approx(1.2)
    assert sample(metrics, "parley_reply_first_token_seconds_bucket", model="a", le="0.35") == 1.0
    assert sample(metrics, "parley_reply_queue_wait_seconds_count", model="a") == 1.0


def test_the_event_tail_counts_new_events_only(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    conn.xadd(EVENTS, started("before").to_fields())  # type: ignore[arg-type]
    metrics = BotMetrics(models=["a", "b"])
    tail = EventTail(conn, metrics)
    tail.start()
    try:
        conn.xadd(EVENTS, started("after").to_fields())  # type: ignore[arg-type]
        conn.xadd(EVENTS, {"type": "no-such-event", "data": "{}"})
        conn.xadd(EVENTS, reply("a").to_fields())  # type: ignore[arg-type]
        wait_for(
            lambda: sample(metrics, "parley_replies_total", model="a", outcome="ok") == 1.0,
            10,
            "the tail to count the reply",
        )
        assert sample(metrics, "parley_battles_started_total", strategy="balanced") == 1.0
    finally:
        tail.stop()
        conn.close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def request(battle_id: str, model_id: str) -> JobRequest:
    return JobRequest(
        battle_id=battle_id,
        side="a",
        model_id=model_id,
        audio_key=audio_key(battle_id),
        audio_format="ogg",
        max_audio_seconds=30.0,
    )


def test_bot_metrics_endpoint(redis_url: str) -> None:
    service = bot_metrics.start(redis_url, ["a", "b"], port=0, addr="127.0.0.1")
    conn = redis.Redis.from_url(redis_url)
    try:
        enqueue_answer(conn, request("q1", "a"), timeout_s=10)
        text = scrape(service.port)
        assert 'parley_queue_depth{model="a"} 1.0' in text
        assert 'parley_queue_depth{model="b"} 0.0' in text
        conn.xadd(EVENTS, started().to_fields())  # type: ignore[arg-type]
        wait_for(
            lambda: 'parley_battles_started_total{strategy="balanced"} 1.0' in scrape(service.port),
            10,
            "the battle counted",
        )
    finally:
        service.stop()
        conn.close()


def metric_value(text: str, line_start: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.slow
def test_worker_metrics_endpoint(
    tmp_path: Path, redis_url: str, speech_clips: dict[str, bytes]
) -> None:
    server = FakeApiServer(api_key=None, models=("audio-echo", "audio-broken")).start()
    server.broken_models.add("audio-broken")
    client = redis.Redis.from_url(redis_url)
    models = write_models(tmp_path / "models.toml", models_toml(server.openai_url))
    port = free_port()
    worker = start_worker(
        tmp_path,
        redis_url,
        models,
        "echo,broken",
        "--concurrency",
        "2",
        "--metrics-port",
        str(port),
    )
    log = tmp_path / "worker-echo,broken.log"
    try:

        def scraped() -> str | None:
            try:
                return scrape(port)
            except OSError:
                return None

        text = wait_for(scraped, 30, "the worker's /metrics", log)
        assert "parley_worker_slots 2.0" in text
        assert 'parley_queue_depth{model="echo"} 0.0' in text
        for battle_id, model_id in (("m1", "echo"), ("m2", "broken")):
            client.set(audio_key(battle_id), speech_clips["ogg"])
            enqueue_answer(client, request(battle_id, model_id), timeout_s=20, retries=0)
        wait_for(lambda: {"m1", "m2"} <= set(read_results(client)) or None, 20, "results", log)

        def counted() -> str | None:
            text = scrape(port)
            failed = 'parley_worker_job_failures_total{kind="permanent",model="broken"}'
            return text if metric_value(text, failed) == 1.0 else None

        text = wait_for(counted, 10, "the failure counted", log)
        ok = 'parley_worker_jobs_total{model="echo",outcome="ok"}'
        assert metric_value(text, ok) == 1.0
        assert metric_value(text, 'parley_worker_job_seconds_count{model="echo"}') == 1.0
        assert metric_value(text, 'parley_worker_first_token_seconds_count{model="echo"}') == 1.0
        assert metric_value(text, 'parley_worker_queue_wait_seconds_count{model="echo"}') == 1.0
        assert metric_value(text, 'parley_worker_jobs_in_flight{model="echo"}') == 0.0
    finally:
        worker.terminate()
        worker.wait(20)
        client.close()
        server.stop()


def test_metrics_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from contract.settings import SettingsError, load_settings

    monkeypatch.delenv("PARLEY_METRICS_PORT", raising=False)
    assert load_settings().metrics_port is None  # off by default
    monkeypatch.setenv("PARLEY_METRICS_PORT", "9108")
    assert load_settings().metrics_port == 9108
    monkeypatch.setenv("PARLEY_METRICS_PORT", "70000")
    with pytest.raises(SettingsError, match="PARLEY_METRICS_PORT"):
        load_settings()
