"""The participant's whole flow through the real bot, and every bad input we could think of.

One stack for the module (tests share it and use their own participants); the order matters
only for the last test, which reads the bot's log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools

import pytest
import pytest_asyncio

from bot.discord_app import custom_ids as ids
from contract import keys
from contract.keys import RESULTS_GROUP, RESULTS_STREAM
from devstack.driver import StudyDriver
from devstack.harness import E2E_MODELS, SECRET, Stack
from devstack.helpers import (
    MODAL,
    UPDATE_MESSAGE,
    battle_of,
    battle_record,
    bot_messages,
    buttons,
    custom_ids,
    results_added,
    results_all_handled,
    texts,
    where_content_lies,
)
from devstack.standin.state import User

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SECRET_WORDS = (
    [name for name, _ in E2E_MODELS.values()]
    + list(E2E_MODELS)
    + [served for _, served in E2E_MODELS.values()]
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(driver: StudyDriver) -> User:
    """A moderator who set the roster to the two working models and lifted the rate limit."""
    return await driver.open_study()


def assert_anonymous(message: dict) -> None:
    shown = (message.get("content") or "") + " ".join(custom_ids(message))
    for word in SECRET_WORDS:
        assert word not in shown, f"{word!r} revealed before the vote: {shown!r}"


async def test_join_consent_demographics_instructions(
    stack: Stack, driver: StudyDriver, mod: User
) -> None:
    alice = await stack.standin.add_member("alice")
    consent = await driver.command(alice, "join")
    assert consent.ephemeral
    assert "Consent (version 1)" in texts(consent)
    assert custom_ids(consent.original) == [ids.consent("1", "agree"), ids.consent("1", "decline")]

    agreed = await driver.answer(
        await stack.standin.click(alice, consent.original, ids.consent("1", "agree"))
    )
    assert agreed.type == UPDATE_MESSAGE
    assert "Thank you for joining" in texts(agreed)
    form = stack.standin.message(consent.original["id"])
    opened = await stack.standin.click(alice, form, ids.about("open"))
    assert (await driver.answer(opened)).type == MODAL
    submitted = await stack.standin.submit_modal(
        alice, opened, {"age_band": "25-34", "first_language": "Welsh"}
    )
    instructions = texts(await driver.answer(submitted))
    assert "How it works" in instructions
    thread = driver.thread_of(alice)
    assert f"<#{thread.id}>" in instructions

    mine = await driver.command(alice, "mydata")
    assert mine.ephemeral
    assert "25-34" in driver.read(mine)
    assert "Welsh" in driver.read(mine)
    # /join again: already in, straight to the instructions, same thread.
    again = await driver.command(alice, "join")
    assert "How it works" in texts(again)
    assert driver.thread_of(alice).id == thread.id


async def test_decline_stores_nothing(stack: Stack, driver: StudyDriver, mod: User) -> None:
    dora = await stack.standin.add_member("dora")
    consent = await driver.command(dora, "join")
    declined = await driver.answer(
        await stack.standin.click(dora, consent.original, ids.consent("1", "decline"))
    )
    assert "nothing was stored" in texts(declined)
    mine = await driver.command(dora, "mydata")
    assert "consent" not in texts(mine).lower() or "null" in texts(mine).lower()


async def test_battle_vote_reveal_comment(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    bea, thread = await driver.join("bea")
    message, battle_id = await driver.battle(bea, thread, voice_ogg)
    assert "**Model A**" in message["content"]
    assert "**Model B**" in message["content"]
    assert "I heard" in message["content"]
    assert_anonymous(message)
    assert set(buttons(message)) == {
        ids.vote(battle_id, "a"),
        ids.vote(battle_id, "b"),
        ids.vote(battle_id, "tie"),
        ids.vote(battle_id, "bothbad"),
        ids.comment(battle_id),
    }

    # Someone else's click.
    eve = await stack.standin.add_member("eve")
    other = await driver.vote(eve, message, battle_id, "b", forged=True)
    assert other.ephemeral
    assert "Only the person who started this battle" in texts(other)

    # A double click: both clicks arrive before the first is answered.
    first = await stack.standin.click(bea, message, ids.vote(battle_id, "a"))
    second = await stack.standin.click(bea, message, ids.vote(battle_id, "a"))
    responses = [await driver.answer(first), await driver.answer(second)]
    updates = [r for r in responses if r.type == UPDATE_MESSAGE]
    refusals = [r for r in responses if r.ephemeral]
    assert len(updates) == 1
    assert len(refusals) == 1
    assert "already voted" in texts(refusals[0])
    revealed = stack.standin.message(message["id"])
    assert "Thanks for voting (A is better)" in revealed["content"]
    names = {name for name, _ in E2E_MODELS.values()}
    assert sum(name in revealed["content"] for name in names) == 2
    assert "more rounds today" in revealed["content"]
    state = buttons(revealed)
    assert all(state[ids.vote(battle_id, c)] for c in ("a", "b", "tie", "bothbad"))
    assert not state[ids.comment(battle_id)]

    # A second vote, forged past the disabled buttons.
    late = await driver.vote(bea, revealed, battle_id, "b", forged=True)
    assert "already voted" in texts(late)

    # Comments: a good one, an empty one, one far too long.
    async def comment(text: str, *, forged: bool = False) -> str:
        return texts(await driver.comment(bea, revealed, battle_id, text, forged=forged))

    assert "comment was saved" in await comment("A understood my accent.")
    assert "empty" in await comment("   ")
    assert "empty" in await comment("", forged=True)
    # Discord's client enforces the input's max_length; a forged submit meets the bot's check.
    with pytest.raises(ValueError, match="allows 1000 characters"):
        await comment("x" * 5000)
    assert "the limit is 1,000" in await comment("x" * 5000, forged=True)
    mine = driver.read(await driver.command(bea, "mydata"))
    assert "A understood my accent." in mine
    assert "xxxxxxxxxx" not in mine


async def test_dm_audio_file_upload(
    stack: Stack, driver: StudyDriver, mod: User, speech_mp3: bytes
) -> None:
    cleo, _ = await driver.join("cleo")
    dm = stack.standin.dm_channel(cleo)
    sent = await stack.standin.send_message(
        cleo, dm, attachments=[("question.mp3", speech_mp3, "audio/mpeg")]
    )
    progress = await driver.wait_reply(dm, sent)
    battle_id = await driver.wait_vote_buttons(progress["id"])
    voted = await driver.vote(cleo, progress["id"], battle_id, "tie")
    assert "Thanks for voting (a tie)" in texts(voted)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("text", "I only take voice messages"),
        ("not_audio", "doesn't look like audio"),
        ("corrupt", "damaged"),
        ("twenty_minutes", "the study takes up to 60 s"),
        ("thirty_mb", "the study takes audio up to 8.0 MB"),
    ],
)
async def test_bad_input_gets_a_polite_answer(
    stack: Stack,
    driver: StudyDriver,
    mod: User,
    case: str,
    expected: str,
    corrupt_ogg: bytes,
    twenty_minutes_wav: bytes,
) -> None:
    user, thread = await driver.join(f"bad-{case}")
    attachments = {
        "text": None,
        "not_audio": [("notes.txt", b"just some notes", "text/plain")],
        "corrupt": [("voice.ogg", corrupt_ogg, "audio/ogg")],
        "twenty_minutes": [("lecture.wav", twenty_minutes_wav, "audio/wav")],
        "thirty_mb": [("huge.ogg", b"OggS" + bytes(30_000_000), "audio/ogg")],
    }[case]
    sent = await stack.standin.send_message(
        user, thread, "hello bot" if case == "text" else "", attachments=attachments
    )
    reply = await driver.wait_reply(thread, sent)
    message = await driver.wait_content(reply["id"], expected)
    assert not [c for c in custom_ids(message) if ids.parse_vote(c)]
    if case == "thirty_mb":
        # Refused from the attachment's size: never downloaded.
        assert sent["attachments"][0]["id"] not in stack.standin.downloads


async def test_voice_in_the_public_channel_is_redirected(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    rex, _ = await driver.join("rex")
    sent = await stack.standin.send_voice_message(rex, "study", voice_ogg, 2.0)
    reply = await driver.wait_reply("study", sent)
    assert "private thread" in reply["content"]
    assert sent["attachments"][0]["id"] not in stack.standin.downloads


async def test_voice_before_joining(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    stranger = await stack.standin.add_member("stranger")
    dm = stack.standin.dm_channel(stranger)
    reply = await driver.ask(stranger, dm, voice_ogg)
    assert "join the study first" in reply["content"]


async def test_vote_before_replies(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    fay, thread = await driver.join("fay")
    assert stack.fake_api is not None
    # Slow enough that the early click surely lands before the reply, even on a busy machine.
    stack.fake_api.slow_models[E2E_MODELS["beta"][1]] = 6.0
    try:
        progress = await driver.ask(fay, thread, voice_ogg)
        # The buttons show at once, disabled until both replies are in.
        waiting = await driver.wait_buttons(progress["id"], timeout=10)
        assert all(buttons(waiting).values())
        battle_id = battle_of(stack, progress["id"])
        assert battle_id is not None
        # A modified client can click a disabled button: the study core still says no.
        early = await driver.vote(fay, waiting, battle_id, "a", forged=True)
        assert early.ephemeral
        assert "wait until both replies are in" in texts(early)
        # Partial text streams into the message before the end.
        await driver.wait_vote_buttons(progress["id"])
    finally:
        stack.fake_api.slow_models.clear()


async def test_replies_stream_within_the_edit_rate(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    max_, thread = await driver.join("max")
    assert stack.fake_api is not None
    stack.fake_api.chunk_delay_s = 0.5
    try:
        progress = await driver.ask(max_, thread, voice_ogg)
        streaming = await driver.wait_content(progress["id"], "▌", timeout=30)
        assert_anonymous(streaming)
        await driver.wait_vote_buttons(progress["id"])
    finally:
        stack.fake_api.chunk_delay_s = 0.0
    edits = [
        call.at
        for call in stack.standin.calls("PATCH", "/channels/{channel_id}/messages/{message_id}")
        if call.params.get("message_id") == progress["id"]
    ]
    assert len(edits) >= 3, "progress, at least one partial, the final replies"
    gaps = [later - earlier for earlier, later in itertools.pairwise(edits)]
    # The bot spaces its edits 1.5 s apart; arrival times here jitter with the machine's load.
    assert min(gaps) >= 1.0, f"edits closer than Discord's rate limit allows: {gaps}"
    assert sum(gaps) / len(gaps) >= 1.4, gaps


async def test_long_replies_are_cut_and_attached(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    nia, thread = await driver.join("nia")
    assert stack.fake_api is not None
    long_reply = " ".join(f"word{i}" for i in range(700))  # ~6,000 characters
    # The fake API runs in this process: an instance attribute replaces its canned reply.
    stack.fake_api.reply_for = lambda seconds, history_turns: long_reply  # type: ignore[method-assign]
    try:
        message, _ = await driver.battle(nia, thread, voice_ogg)
    finally:
        del stack.fake_api.reply_for
    assert len(message["content"]) <= 2000
    assert "model-a.txt" in message["content"]
    files = [
        attachment for m in bot_messages(stack, thread) for attachment in m.get("attachments") or []
    ]
    names = sorted(a["filename"] for a in files)
    assert names == ["model-a.txt", "model-b.txt"]
    assert all(stack.standin.attachment_bytes(a).decode() == long_reply for a in files)


async def test_queue_position_while_no_worker_runs(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    ona, ona_thread = await driver.join("ona")
    pia, pia_thread = await driver.join("pia")
    await stack.stop_worker()
    try:
        first_progress = await driver.ask(ona, ona_thread, voice_ogg)
        await driver.wait_buttons(first_progress["id"], timeout=10)
        second_progress = await driver.ask(pia, pia_thread, voice_ogg)
        await driver.wait_content(second_progress["id"], "1 message is ahead of yours")
    finally:
        await stack.start_worker()
    await driver.wait_vote_buttons(first_progress["id"])
    await driver.wait_vote_buttons(second_progress["id"])


async def test_discord_rate_limits_and_errors_are_ridden_out(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    sam, thread = await driver.join("sam")
    # Message edits meet 429s first, then a 502: discord.py waits and retries.
    stack.standin.fail_next("PATCH", "/channels/*/messages/*", status=429, times=3, retry_after=0.3)
    stack.standin.fail_next("PATCH", "/channels/*/messages/*", status=502, times=1)
    message, battle_id = await driver.battle(sam, thread, voice_ogg)
    assert "I heard" in message["content"]
    voted = await driver.vote(sam, message, battle_id, "a")
    assert voted.type == UPDATE_MESSAGE


async def test_failed_model_takes_no_vote(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    assert "broken" in await driver.moderate(mod, "models", roster="alpha,broken")
    try:
        gil, thread = await driver.join("gil")
        progress = await driver.ask(gil, thread, voice_ogg)
        failed = await driver.wait_content(progress["id"], "could not answer this time", timeout=30)
        assert not custom_ids(failed)
        assert_anonymous(failed)
        # No buttons left to vote with, and the core has the battle as failed.
        battle_id = battle_of(stack, progress["id"])
        assert battle_id is not None
        assert battle_record(stack, battle_id)["status"] == "failed"
    finally:
        await driver.moderate(mod, "models", roster="alpha,beta")


async def test_withdraw_with_confirmation(stack: Stack, driver: StudyDriver, mod: User) -> None:
    hal, _ = await driver.join("hal")
    asked = await driver.command(hal, "withdraw")
    assert asked.ephemeral
    assert "Are you sure" in texts(asked)
    confirm = ids.withdraw(hal.id, "confirm")
    assert confirm in custom_ids(asked.original)
    ivy = await stack.standin.add_member("ivy")
    wrong = await driver.answer(await driver.forge_click(ivy, asked.original, confirm))
    assert "someone else's" in texts(wrong)
    done = await driver.answer(await stack.standin.click(hal, asked.original, confirm))
    assert "your data was deleted" in texts(done)
    mine = driver.read(await driver.command(hal, "mydata"))
    assert "withdrawn" in mine


async def test_withdraw_while_replies_are_on_their_way(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    """Nothing of what was said outlives the withdrawal: not the voted battle's replies and
    comment, not the replies (and partial replies) that land after the participant left."""
    quy, thread = await driver.join("quy")
    assert stack.fake_api is not None
    alpha, beta = E2E_MODELS["alpha"][1], E2E_MODELS["beta"][1]
    first = {alpha: "Quokka-first-7731 answer one", beta: "Quokka-first-7732 answer two"}
    late = {alpha: "Quokka-late-8841 answer three", beta: "Quokka-late-8842 answer four"}
    comment = "Quokka-comment-9951 the second one was clearer"
    client = stack.redis_client()
    try:
        stack.fake_api.replies.update(first)
        message, battle_id = await driver.battle(quy, thread, voice_ogg)
        await driver.comment(quy, message, battle_id, comment)
        await driver.vote(quy, message, battle_id, "a")
        stack.fake_api.replies.update(late)
        stack.fake_api.slow_models[alpha] = 1.5
        stack.fake_api.slow_models[beta] = 1.5
        before = results_added(client)
        progress = await driver.ask(quy, thread, voice_ogg)
        await driver.wait_buttons(progress["id"], timeout=10)
        await driver.withdraw(quy)
        # The job a worker was running finishes; its late result meets a battle that is gone:
        # acknowledged, nothing posted. The job still waiting was cancelled: it never runs.
        await stack.standin.wait_for(
            lambda: results_added(client) >= before + 1 and results_all_handled(client),
            timeout=30,
            what="the late result, acknowledged",
        )
        await stack.standin.wait_for(
            lambda: thread.payload["thread_metadata"].get("locked"), timeout=15, what="closing"
        )
        assert "Thanks for voting" not in stack.standin.message(progress["id"])["content"]
        # Their recording is deleted from Discord too, and their thread closed.
        assert not [m for m in stack.standin.messages(thread) if m["author"]["id"] == quy.id]
        assert thread.payload["thread_metadata"]["archived"] is True
        assert thread.payload["thread_metadata"]["locked"] is True
        # The content itself, searched for everywhere: every Redis key (streams, RQ's job
        # records and results) and every file of the data dir. RQ writes a job's record once
        # more after its result is out; the bot deletes it again a few seconds later.
        words = [*first.values(), *late.values(), comment]
        await stack.standin.wait_for(
            lambda: not where_content_lies(client, stack.data_dir, words),
            timeout=30,
            what="no trace of the withdrawn participant's content",
        )
        assert not where_content_lies(client, stack.data_dir, words)
        pseudonym = hmac.new(SECRET.encode(), str(quy.id).encode(), hashlib.sha256).hexdigest()
        record = client.hgetall(keys.participant(pseudonym[:16]))
        assert record[b"status"] == b"withdrawn", "the bare record that they withdrew stays"
        for log in (stack.bot_log(), stack.worker_log()):
            assert not [w for w in words if w in log], "content in the logs"
    finally:
        stack.fake_api.slow_models.clear()
        stack.fake_api.replies.clear()
        client.close()


async def test_restart_between_answer_and_vote(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    jo, thread = await driver.join("jo")
    message, battle_id = await driver.battle(jo, thread, voice_ogg)
    await stack.restart_bot()
    voted = await driver.vote(jo, message, battle_id, "b")
    assert voted.type == UPDATE_MESSAGE
    assert "Thanks for voting (B is better)" in texts(voted)


async def test_results_while_bot_down_shown_once(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    kai, thread = await driver.join("kai")
    assert stack.fake_api is not None
    stack.fake_api.slow_models[E2E_MODELS["alpha"][1]] = 2.0
    stack.fake_api.slow_models[E2E_MODELS["beta"][1]] = 2.0
    client = stack.redis_client()
    try:
        before = results_added(client)
        progress = await driver.ask(kai, thread, voice_ogg)
        # The disabled buttons come once both jobs are enqueued: then the bot may die.
        await driver.wait_buttons(progress["id"], timeout=10)
        await stack.stop_bot(kill=True)
        await stack.standin.wait_for(
            lambda: results_added(client) >= before + 2, timeout=30, what="both results"
        )
        count = len(bot_messages(stack, thread))
        await stack.start_bot()
        battle_id = await driver.wait_vote_buttons(progress["id"])
        await asyncio.sleep(1.0)
        assert len(bot_messages(stack, thread)) == count, "a re-delivered result posted again"
        voted = await driver.vote(kai, progress["id"], battle_id, "a")
        assert voted.type == UPDATE_MESSAGE
        pending = client.xpending(RESULTS_STREAM, RESULTS_GROUP)
        assert pending["pending"] == 0
    finally:
        stack.fake_api.slow_models.clear()
        client.close()


async def test_gateway_reconnect_and_resume(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    lu, thread = await driver.join("lu")
    assert await stack.standin.send_reconnect() == 1
    await stack.standin.wait_for_resume(1, timeout=20)
    sent = await stack.standin.send_message(lu, thread, "still there?")
    assert "I only take voice messages" in (await driver.wait_reply(thread, sent))["content"]
    await stack.standin.drop_gateway(abrupt=True)
    await stack.standin.wait_for_resume(2, timeout=30)
    _, battle_id = await driver.battle(lu, thread, voice_ogg)
    assert battle_id
    # A session Discord will not resume: the bot identifies afresh and goes on.
    await stack.standin.invalidate_session(resumable=False)
    await stack.wait_reidentify()
    sent = await stack.standin.send_message(lu, thread, "and now?")
    assert "I only take voice messages" in (await driver.wait_reply(thread, sent))["content"]


async def test_no_tracebacks_in_the_bot_log(stack: Stack) -> None:
    unknown = [f"{c.method} {c.path}" for c in stack.standin.unknown_routes()]
    assert not unknown, f"the bot called routes Discord does not have: {unknown}"
    log = stack.bot_log()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]
