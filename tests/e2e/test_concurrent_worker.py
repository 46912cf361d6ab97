"""The whole stack with one worker that keeps several jobs in flight (`--concurrency 4`): a
battle's two sides run at the same time in the one worker, votes work, and a withdrawal while
both replies are on their way leaves nothing behind. Bot and worker serve /metrics."""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis

from contract.heartbeat import live_workers
from contract.keys import RESULTS_GROUP, RESULTS_STREAM
from contract.protocol import ResultMessage
from devstack.driver import StudyDriver
from devstack.harness import E2E_MODELS, Stack
from devstack.helpers import UPDATE_MESSAGE, results_added, texts, where_content_lies
from devstack.redis_servers import free_port
from devstack.standin.state import User

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SLOW_S = 1.5
BOT_METRICS = free_port()
WORKER_METRICS = free_port()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    the_stack = Stack(
        tmp_path_factory.mktemp("stack"),
        worker_args=["--no-warmup", "--concurrency", "4", "--metrics-port", str(WORKER_METRICS)],
        extra_env={"PARLEY_METRICS_PORT": str(BOT_METRICS), "PARLEY_METRICS_ADDR": "127.0.0.1"},
    )
    try:
        await the_stack.start()
        yield the_stack
    finally:
        await the_stack.stop()


@pytest.fixture(scope="module")
def driver(stack: Stack) -> StudyDriver:
    return StudyDriver(stack)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(driver: StudyDriver) -> User:
    return await driver.open_study()


def _id(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.decode().partition("-")
    return int(ms), int(seq)


def nothing_waiting(client: redis.Redis) -> bool:
    """No result pending, and none left in the stream for the bot to read. (Unlike
    `results_all_handled`: the two late results arrive together, and the bot's handling of the
    first may delete the second from the stream before it was ever delivered.)"""
    group = next(
        g for g in client.xinfo_groups(RESULTS_STREAM) if g["name"] == RESULTS_GROUP.encode()
    )
    newest = client.xrevrange(RESULTS_STREAM, count=1)
    delivered = _id(group["last-delivered-id"])
    return group["pending"] == 0 and (not newest or _id(newest[0][0]) <= delivered)


def results_of(stack: Stack, battle_id: str) -> list[ResultMessage]:
    client = stack.redis_client()
    try:
        messages = [ResultMessage.from_fields(f) for _, f in client.xrange(RESULTS_STREAM)]
    finally:
        client.close()
    return [m for m in messages if m.battle_id == battle_id]


async def test_both_sides_run_at_once_in_one_worker(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    client = stack.redis_client()
    try:
        (worker,) = live_workers(client)
    finally:
        client.close()
    assert worker.concurrency == 4
    assert stack.fake_api is not None
    for _, served in E2E_MODELS.values():
        stack.fake_api.slow_models[served] = SLOW_S
    try:
        ana, thread = await driver.join("ana")
        message, battle_id = await driver.battle(ana, thread, voice_ogg)
    finally:
        stack.fake_api.slow_models.clear()
    a, b = sorted(results_of(stack, battle_id), key=lambda m: m.side)
    assert a.ok
    assert b.ok
    # One process, two slots, and the two jobs overlapped in time.
    assert a.worker != b.worker
    assert {w.split("~")[0] for w in (a.worker or "", b.worker or "")} == {worker.name}
    a_start, b_start = (m.finished_at - m.timings["total"] for m in (a, b))
    assert a_start < b.finished_at - SLOW_S / 2
    assert b_start < a.finished_at - SLOW_S / 2
    voted = await driver.vote(ana, message, battle_id, "a")
    assert voted.type == UPDATE_MESSAGE
    assert "Thanks for voting (A is better)" in texts(voted)


async def test_withdraw_while_both_replies_are_in_flight(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    bo, thread = await driver.join("bo")
    assert stack.fake_api is not None
    late = {
        served: f"Wombat-late-{i}417 reply" for i, (_, served) in enumerate(E2E_MODELS.values())
    }
    stack.fake_api.replies.update(late)
    for _, served in E2E_MODELS.values():
        stack.fake_api.slow_models[served] = SLOW_S
    client = stack.redis_client()
    try:
        before = results_added(client)
        progress = await driver.ask(bo, thread, voice_ogg)
        await driver.wait_buttons(progress["id"], timeout=10)
        await driver.withdraw(bo)
        # Both jobs were running (four slots): both finish, and their late results meet a
        # battle that is gone: acknowledged, nothing posted.
        await stack.standin.wait_for(
            lambda: results_added(client) >= before + 2, timeout=30, what="both late results"
        )
        await stack.standin.wait_for(
            lambda: nothing_waiting(client), timeout=30, what="the results acknowledged"
        )
        await stack.standin.wait_for(
            lambda: thread.payload["thread_metadata"].get("locked"), timeout=15, what="closing"
        )
        assert "Thanks for voting" not in stack.standin.message(progress["id"])["content"]
        assert not [m for m in stack.standin.messages(thread) if m["author"]["id"] == bo.id]
        # No trace of the two late replies anywhere (Redis, RQ's records, the data dir).
        await stack.standin.wait_for(
            lambda: not where_content_lies(client, stack.data_dir, late.values()),
            timeout=30,
            what="no trace of the late replies",
        )
    finally:
        stack.fake_api.replies.clear()
        stack.fake_api.slow_models.clear()
        client.close()


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_bot_and_worker_metrics(stack: Stack, driver: StudyDriver, mod: User) -> None:
    """After the two battles above: what Prometheus would read from the bot and the worker."""
    bot = scrape(BOT_METRICS)
    started = sum(v for k, v in bot.items() if k.startswith("parley_battles_started_total{"))
    assert started >= 2
    assert bot['parley_votes_total{winner="model_a"}'] == 1.0
    ok = sum(v for k, v in bot.items() if k.startswith("parley_replies_total{") and "ok" in k)
    assert ok >= 2
    assert any(k.startswith("parley_queue_depth{") for k in bot)
    worker = scrape(WORKER_METRICS)
    assert worker["parley_worker_slots"] == 4.0
    done = sum(
        v for k, v in worker.items() if k.startswith("parley_worker_jobs_total{") and "ok" in k
    )
    assert done >= 4
