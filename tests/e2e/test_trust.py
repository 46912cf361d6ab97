"""Votes a study can trust, end to end through the stand-in (issue 11): a study nobody opened
takes no rounds; a model that names itself is masked before the vote and flagged; an instant
vote is flagged; flagged votes are in the export; replies never reach the logs; /withdraw and
/mydata work in DMs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pandas as pd
import pytest
import pytest_asyncio

from bot.core.identity import MASK
from bot.discord_app import custom_ids as ids
from contract import keys
from devstack.driver import StudyDriver
from devstack.harness import E2E_MODELS, Stack
from devstack.helpers import battle_record, texts

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ALPHA, BETA = E2E_MODELS["alpha"][1], E2E_MODELS["beta"][1]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A stack as production starts: the study closed until a moderator opens it."""
    the_stack = Stack(tmp_path_factory.mktemp("trust"), open_at_start=False)
    try:
        await the_stack.start()
        yield the_stack
    finally:
        await the_stack.stop()


@pytest.fixture(scope="module")
def driver(stack: Stack) -> StudyDriver:
    return StudyDriver(stack)


def rq_jobs(stack: Stack) -> list[bytes]:
    client = stack.redis_client()
    try:
        return list(client.scan_iter(match="rq:job:*"))
    finally:
        client.close()


def battle_keys(stack: Stack) -> list[bytes]:
    client = stack.redis_client()
    try:
        return list(client.scan_iter(match=keys.battle("*")))
    finally:
        client.close()


async def test_a_study_nobody_opened_takes_no_rounds(
    stack: Stack, driver: StudyDriver, voice_ogg: bytes
) -> None:
    ada, thread = await driver.join("ada")
    sent = await driver.send_voice(ada, thread, voice_ogg)
    reply = await driver.wait_reply(thread, sent)
    assert "not open yet" in reply["content"]
    assert battle_keys(stack) == []
    assert rq_jobs(stack) == []
    mod = await driver.moderator("opener")
    opened = await driver.moderate(mod, "open")
    assert "The study is now **open**" in opened
    # The worker serves every model of the proposed roster (the whole models file).
    assert "No live worker serves" not in opened
    await driver.moderate(mod, "models", roster="alpha, beta")
    await driver.moderate(mod, "limits", min_seconds_between=0)
    _message, battle_id = await driver.battle(ada, thread, voice_ogg)
    assert battle_id


async def test_a_model_that_names_itself_is_masked_before_the_vote_and_flagged(
    stack: Stack, driver: StudyDriver, voice_ogg: bytes
) -> None:
    assert stack.fake_api is not None
    stack.fake_api.replies[ALPHA] = "Hello! I am Alpha Voice, and Paris is the capital of France."
    stack.fake_api.replies[BETA] = "Beta Speech here: the capital of France is Paris."
    try:
        bo, thread = await driver.join("bo")
        message, battle_id = await driver.battle(bo, thread, voice_ogg)
    finally:
        stack.fake_api.replies.clear()
    shown = message["content"]
    assert MASK in shown
    assert "Alpha Voice" not in shown
    assert "Beta Speech" not in shown
    assert "identity_leak" in battle_record(stack, battle_id)["flags"]
    voted = await driver.vote(bo, message, battle_id, "a")
    assert "Thanks for voting" in texts(voted)
    assert "identity_leak" in battle_record(stack, battle_id)["flags"], "the vote kept its flag"


async def test_an_instant_vote_is_flagged_and_flags_are_exported(
    stack: Stack, driver: StudyDriver, voice_ogg: bytes
) -> None:
    assert stack.fake_api is not None
    # 2 x 600 characters: 24 s at the default reading speed of 50 characters per second.
    long_a = "The capital of France is Paris. " * 19
    long_b = "Paris, on the Seine, is France's capital. " * 15
    stack.fake_api.replies[ALPHA] = long_a
    stack.fake_api.replies[BETA] = long_b
    try:
        cy, thread = await driver.join("cy")
        message, battle_id = await driver.battle(cy, thread, voice_ogg)
    finally:
        stack.fake_api.replies.clear()
    await driver.vote(cy, message, battle_id, "b")
    assert "fast_vote" in battle_record(stack, battle_id)["flags"]

    mod = await driver.moderator("exporter")
    said = await driver.moderate(mod, "export")
    assert "fast_vote 1" in said
    assert "identity_leak 1" in said
    [path] = sorted((stack.data_dir / "exports").glob("battles-*.csv"))
    exported = pd.read_csv(path, dtype=str, keep_default_na=False)
    flags = dict(zip(exported["battle_id"], exported["flags"], strict=True))
    assert "fast_vote" in flags[battle_id].split(",")
    assert any("identity_leak" in f.split(",") for f in flags.values())
    assert len(exported) == 3, "flagged battles stay in the export"

    # What participants said and heard never reaches the logs.
    for text in (long_a.strip(), long_b.strip(), "I am Alpha Voice", "Beta Speech here"):
        for log in (stack.bot_log(), stack.worker_log()):
            assert text not in log
    for battle in exported.itertuples():
        for said_text in (battle.transcript, battle.reply_a, battle.reply_b):
            if said_text:
                assert str(said_text) not in stack.bot_log()
                assert str(said_text) not in stack.worker_log()


async def test_withdraw_and_mydata_work_in_dms(
    stack: Stack, driver: StudyDriver, voice_ogg: bytes
) -> None:
    dee, _thread = await driver.join("dee")
    dm = stack.standin.dm_channel(dee)
    mine = driver.read(await driver.command(dee, "mydata", channel=dm))
    assert "consent" in mine
    asked = await driver.command(dee, "withdraw", channel=dm)
    assert asked.original is not None
    assert "Are you sure?" in texts(asked)
    confirm = ids.withdraw(dee.id, "confirm")
    done = await driver.answer(await stack.standin.click(dee, asked.original, confirm))
    assert "your data was deleted" in texts(done)
    after = driver.read(await driver.command(dee, "mydata", channel=dm))
    assert "withdrawn" in after
