"""Redis off this machine: `REDIS_URL` with `rediss://` (TLS) and an ACL user, as a managed
Redis hands it out. A private redis-server speaks only TLS (certificates made with openssl in a
temp dir) and admits only an ACL user; the bot's core client, an RQ enqueue and a real
`python -m workers` process all work over it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.core import connect
from contract.keys import audio_key
from contract.modelsfile import load_models_file
from contract.protocol import JobRequest
from contract.queueing import enqueue_answer, fetch_job
from contract.settings import load_settings
from devstack.fake_apis import FakeApiServer
from devstack.redis_servers import RedisServer, make_tls_files
from tests.core.helpers import MODELS_TOML, Clock, make_study
from tests.workers.conftest import write_models
from tests.workers.test_rq_roundtrip import models_toml, read_results, start_worker, wait_for

PASSWORD = "s3cret/pass:word"  # characters a URL must escape


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(
        dir=tmp_path / "redis",
        aof=True,
        tls=make_tls_files(tmp_path / "tls"),
        acl_user=("parley", PASSWORD),
    ).start()
    yield server
    server.stop()


def test_plain_and_anonymous_connections_are_refused(tls_redis: RedisServer) -> None:
    assert tls_redis.url.startswith("rediss://parley:s3cret%2Fpass%3Aword@127.0.0.1:")
    assert load_settings(REDIS_URL=tls_redis.url).redis_url == tls_redis.url
    plain = redis.Redis(host="127.0.0.1", port=tls_redis.port, socket_timeout=2)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()
    anonymous = redis.Redis.from_url(tls_redis.url.replace(f"parley:{'s3cret%2Fpass%3Aword'}@", ""))
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    no_ca = redis.Redis.from_url(tls_redis.url.split("?")[0], socket_timeout=2)
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        no_ca.ping()
    for client in (plain, anonymous, no_ca):
        client.close()


async def test_the_core_client_over_tls(tls_redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "models.toml").write_text(MODELS_TOML)
    client = connect(tls_redis.url)
    try:
        study = make_study(
            client, load_models_file(tmp_path / "models.toml"), tmp_path / "data", Clock(1e9)
        )
        await study.check_persistence(allow_volatile=False)  # AOF on: durable
        participant = await study.consent(1001, "1")
        assert (await study.participant(1001)) == participant
    finally:
        await client.aclose()


@pytest.mark.slow
def test_enqueue_and_a_worker_over_tls(
    tls_redis: RedisServer, tmp_path: Path, speech_clips: dict[str, bytes]
) -> None:
    server = FakeApiServer(api_key=None, models=("audio-echo",)).start()
    conn = redis.Redis.from_url(tls_redis.url)
    models = write_models(tmp_path / "models.toml", models_toml(server.openai_url))
    worker = start_worker(tmp_path, tls_redis.url, models, "echo", "--concurrency", "2")
    log = tmp_path / "worker-echo.log"
    try:
        conn.set(audio_key("tls1"), speech_clips["ogg"])
        request = JobRequest(
            battle_id="tls1",
            side="a",
            model_id="echo",
            audio_key=audio_key("tls1"),
            audio_format="ogg",
            max_audio_seconds=30.0,
        )
        job_id = enqueue_answer(conn, request, timeout_s=20)
        result = wait_for(lambda: read_results(conn).get("tls1"), 30, "the result over TLS", log)
        assert result.ok
        assert result.reply == FakeApiServer.reply_for(2.4, 0)
        deadline = time.monotonic() + 10
        while (snapshot := fetch_job(conn, job_id)) is None or snapshot.state.value != "finished":
            assert time.monotonic() < deadline, snapshot
            time.sleep(0.05)
        assert PASSWORD not in log.read_text()
    finally:
        worker.terminate()
        worker.wait(20)
        conn.close()
        server.stop()
