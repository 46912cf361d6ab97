"""Faults injected into the whole stack: the real bot and worker processes, a private AOF Redis,
the Discord stand-in and a fake model API. What each test proves: docs/reliability.md.

One stack for the module (tests use their own participants). The sweeper runs every second so
a dead worker is noticed as soon as its heartbeat goes stale (15 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.discord_app import custom_ids as ids
from devstack.driver import StudyDriver
from devstack.harness import E2E_MODELS, Stack
from devstack.helpers import (
    UPDATE_MESSAGE,
    battle_of,
    battle_record,
    bot_messages,
    buttons,
    texts,
)
from devstack.standin.state import User
from tests.reliability.faults_flow import started_jobs, vote_events, waiting_jobs

pytestmark = [pytest.mark.reliability, pytest.mark.asyncio(loop_scope="module")]

ALPHA, BETA = E2E_MODELS["alpha"][1], E2E_MODELS["beta"][1]
CALLBACK = "/interactions/{interaction_id}/{token}/callback"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    the_stack = Stack(
        tmp_path_factory.mktemp("faults"),
        extra_env={"PARLEY_SWEEP_INTERVAL": "1", "PARLEY_JOB_TIMEOUT": "60"},
    )
    try:
        await the_stack.start()
        yield the_stack
    finally:
        await the_stack.stop()


@pytest.fixture(scope="module")
def driver(stack: Stack) -> StudyDriver:
    """The bot rides out faults before it answers: the driver waits longer."""
    return StudyDriver(stack, timeout=20)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(driver: StudyDriver) -> User:
    """A moderator who set the roster to the two working models and lifted the rate limit."""
    return await driver.open_study()


async def kill_alpha_mid_job(stack: Stack, *, not_job: str | None = None) -> str:
    """Wait until the worker is inside a (slow) call to the alpha model, then SIGKILL it;
    returns the killed job's id. `not_job`: a job killed before, still in RQ's registry."""
    assert stack.fake_api is not None
    fake_api = stack.fake_api
    client = stack.redis_client()
    try:
        jobs = await stack.standin.wait_for(
            lambda: [j for j in started_jobs(client, "alpha") if j != not_job],
            timeout=60,
            what="a started alpha job",
        )
        await stack.standin.wait_for(
            lambda: [r for r in fake_api.generation_requests() if r["json"]["model"] == ALPHA],
            timeout=10,
            what="a call to the alpha model",
        )
    finally:
        client.close()
    await stack.stop_worker(kill=True)
    fake_api.requests.clear()
    return jobs[0]


async def test_worker_killed_mid_job_is_requeued_once_then_the_participant_is_told(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    assert stack.fake_api is not None
    wren, thread = await driver.join("wren")
    # Every battle has alpha on one side; its replies take a minute, beta's come at once.
    stack.fake_api.requests.clear()
    stack.fake_api.slow_models[ALPHA] = 60.0
    try:
        # 1. Killed once: the sweeper enqueues the side again and a new worker answers it.
        progress = await driver.ask(wren, thread, voice_ogg)
        killed = await kill_alpha_mid_job(stack)
        stack.fake_api.slow_models.clear()
        await stack.start_worker()
        battle_id = await driver.wait_vote_buttons(progress["id"], timeout=60)
        log = stack.bot_log()
        assert f"battle {battle_id} side" in log
        assert "requeued: worker parley-" in log
        assert f"running job {killed}" in log
        voted = await driver.vote(wren, progress["id"], battle_id, "a")
        assert voted.type == UPDATE_MESSAGE

        # 2. Killed on the first try and on the second: no attempt left, so the participant
        # is told and the battle fails instead of waiting forever.
        stack.fake_api.slow_models[ALPHA] = 60.0
        progress = await driver.ask(wren, thread, voice_ogg)
        killed = await kill_alpha_mid_job(stack)
        await stack.start_worker()
        await kill_alpha_mid_job(stack, not_job=killed)
        stack.fake_api.slow_models.clear()
        await stack.start_worker()
        failed = await driver.wait_content(progress["id"], "could not answer", timeout=60)
    finally:
        stack.fake_api.slow_models.clear()
    assert not any(not off for off in buttons(failed).values()), "no vote on a failed battle"
    battle_id = battle_of(stack, progress["id"])
    assert battle_id is not None
    record = battle_record(stack, battle_id)
    assert record["status"] == "failed"
    assert "died while running job" in record.get("reply_a", "") + record.get("reply_b", "")


async def test_redis_restarted_mid_study_loses_no_vote(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    assert stack.redis_server is not None
    rae, thread = await driver.join("rae")
    first, first_id = await driver.battle(rae, thread, voice_ogg)
    voted = await driver.vote(rae, first, first_id, "b")
    assert voted.type == UPDATE_MESSAGE
    second, second_id = await driver.battle(rae, thread, voice_ogg)

    stack.redis_server.kill()  # SIGKILL: no shutdown save, only the AOF survives
    await asyncio.sleep(1.0)
    stack.redis_server.start()

    # Nothing lost: the vote, the answered battle, the participant.
    assert battle_record(stack, first_id)["winner"] == "model_b"
    assert battle_record(stack, second_id)["status"] == "answered"
    # The bot reconnects by itself: the first click after the restart, on the battle answered
    # before the crash, works (no "storage is not reachable" from a dead pooled connection).
    response = await driver.vote(rae, second, second_id, "tie", timeout=15)
    assert response.type == UPDATE_MESSAGE, texts(response)
    assert battle_record(stack, second_id)["winner"] == "tie"
    # The worker reconnects by itself: a new battle goes all the way.
    third, third_id = await driver.battle(rae, thread, voice_ogg)
    voted = await driver.vote(rae, third, third_id, "a")
    assert voted.type == UPDATE_MESSAGE
    for battle_id in (first_id, second_id, third_id):
        assert vote_events(stack, battle_id) == 1


async def test_bot_killed_between_replies_and_vote(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    kit, thread = await driver.join("kit")
    message, battle_id = await driver.battle(kit, thread, voice_ogg)
    await stack.stop_bot(kill=True)
    await stack.start_bot()
    voted = await driver.vote(kit, message, battle_id, "b")
    assert voted.type == UPDATE_MESSAGE
    assert "Thanks for voting (B is better)" in texts(voted)
    # A stale client still showing the buttons clicks again.
    again = await driver.vote(kit, message, battle_id, "a", forged=True)
    assert "already voted" in texts(again)
    assert battle_record(stack, battle_id)["winner"] == "model_b"
    assert vote_events(stack, battle_id) == 1


async def test_bot_killed_between_a_vote_click_and_its_answer(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    lev, thread = await driver.join("lev")
    message, battle_id = await driver.battle(lev, thread, voice_ogg)
    # The click's answer meets a long 429: the vote is recorded, the answer not yet sent.
    stack.standin.fail_next("POST", CALLBACK, status=429, retry_after=30)
    click = await stack.standin.click(lev, message, ids.vote(battle_id, "a"))
    # Kill only once the answer met the 429 (else the fault would catch a later answer).
    await stack.standin.wait_for(
        lambda: [
            call
            for call in stack.standin.calls("POST", CALLBACK)
            if call.params.get("interaction_id") == click.id and call.status == 429
        ],
        timeout=10,
        what="the click's answer rate-limited",
    )
    assert battle_record(stack, battle_id).get("status") == "voted"
    await stack.stop_bot(kill=True)
    assert not click.callback.done(), "the click was answered before the bot died"
    # The message still asks for a vote: the answer that would have edited it never came.
    assert not all(buttons(stack.standin.message(message["id"])).values())
    await stack.start_bot()

    # The repeat click is told the first vote stands, and the message shows the reveal.
    again = await driver.vote(lev, message["id"], battle_id, "b")
    assert "already voted" in texts(again)
    revealed = await driver.wait_content(message["id"], "Thanks for voting (A is better)")
    names = {name for name, _ in E2E_MODELS.values()}
    assert sum(name in revealed["content"] for name in names) == 2
    assert all(off for cid, off in buttons(revealed).items() if ids.parse_vote(cid))
    assert battle_record(stack, battle_id)["winner"] == "model_a"
    assert vote_events(stack, battle_id) == 1

    # Killed the instant the click arrives: whether or not the vote got in, it is in once.
    second, second_id = await driver.battle(lev, thread, voice_ogg)
    await stack.standin.click(lev, second, ids.vote(second_id, "tie"))
    await stack.stop_bot(kill=True)
    await stack.start_bot()
    current = stack.standin.message(second["id"])
    if not all(buttons(current).get(ids.vote(second_id, c)) for c in ("a", "tie")):
        # The answer never came: the participant clicks again.
        retry = await driver.vote(lev, current, second_id, "tie")
        assert retry.type == UPDATE_MESSAGE or "already voted" in texts(retry)
    await driver.wait_content(second["id"], "Thanks for voting (a tie)")
    assert battle_record(stack, second_id)["winner"] == "tie"
    assert vote_events(stack, second_id) == 1


async def test_discord_429_and_5xx_are_retried_and_nothing_is_dropped(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    mia, thread = await driver.join("mia")
    standin = stack.standin
    before = len(bot_messages(stack, thread))  # the thread's welcome
    # The reply to the voice message (the battle's message) meets two 429s and a 502.
    standin.fail_next("POST", "/channels/*/messages", status=429, times=2, retry_after=0.3)
    standin.fail_next("POST", "/channels/*/messages", status=502)
    # Every edit of it meets a 500 first, then 429s.
    standin.fail_next("PATCH", "/channels/*/messages/*", status=500)
    standin.fail_next("PATCH", "/channels/*/messages/*", status=429, times=2, retry_after=0.3)
    message, battle_id = await driver.battle(mia, thread, voice_ogg)
    assert "**Model A**" in message["content"]
    # The vote click's answer meets a 502 and is retried within Discord's 3 s.
    standin.fail_next("POST", CALLBACK, status=502)
    voted = await driver.vote(mia, message, battle_id, "a", timeout=15)
    assert voted.type == UPDATE_MESSAGE
    statuses = [call.status for call in standin.rest_log]
    for status in (429, 500, 502):
        assert status in statuses, f"no {status} was served"
    assert battle_record(stack, battle_id)["winner"] == "model_a"
    # Exactly one battle message in the thread for the one voice message.
    assert len(bot_messages(stack, thread)) == before + 1
    assert standin.unknown_routes() == []


async def test_gateway_drop_misses_no_voice_message(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    gus, thread = await driver.join("gus")
    standin = stack.standin
    await standin.drop_gateway(abrupt=True)
    # Sent while the bot has no connection: Discord keeps it for the session's RESUME.
    assert standin.gateway.live_sessions() == []
    progress = await driver.ask(gus, thread, voice_ogg)
    battle_id = await driver.wait_vote_buttons(progress["id"], timeout=30)
    assert battle_id
    # Voted, so the next voice message starts a new battle (before a vote it would be the
    # battle's next turn).
    await driver.vote(gus, progress["id"], battle_id, "a")
    # An op 7 RECONNECT right before a voice message: the same.
    await standin.send_reconnect()
    _, again = await driver.battle(gus, thread, voice_ogg)
    assert again != battle_id


async def test_no_tracebacks_in_the_logs(stack: Stack) -> None:
    log = stack.bot_log()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]
    client = stack.redis_client()
    try:
        assert waiting_jobs(client) == 0
    finally:
        client.close()
