"""The participant's whole flow through the real bot, and every bad input we could think of.

One stack for the module (tests share it and use their own participants); the order matters
only for the last test, which reads the bot's log.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import pytest_asyncio

from devstack.harness import E2E_MODELS, Stack
from devstack.helpers import (
    MODAL,
    UPDATE_MESSAGE,
    answer,
    bot_messages,
    buttons,
    custom_ids,
    everything,
    forge_click,
    forge_modal_submit,
    results_added,
    results_all_handled,
    texts,
    wait_content,
    wait_reply,
    wait_vote_buttons,
)
from devstack.standin.state import Channel, User

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SECRET_WORDS = (
    [name for name, _ in E2E_MODELS.values()]
    + list(E2E_MODELS)
    + [served for _, served in E2E_MODELS.values()]
)


async def moderate(stack: Stack, mod: User, subcommand: str, **options: Any) -> str:
    interaction = await stack.standin.slash_command(
        mod, "study", subcommand=subcommand, options=options
    )
    response = await answer(stack, interaction)
    if not response.followups and response.type == 5:
        response = await stack.standin.wait_for_followups(interaction)
    return texts(response)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(stack: Stack) -> User:
    """A moderator who set the roster to the two working models and lifted the rate limit."""
    moderator = await stack.standin.add_member("mod", roles=["Study moderator"])
    assert "alpha" in await moderate(stack, moderator, "models", roster="alpha, beta")
    assert "0 s between" in await moderate(stack, moderator, "limits", min_seconds_between=0)
    return moderator


async def join(stack: Stack, name: str) -> tuple[User, Channel]:
    """A member who ran /join, agreed and skipped the form; returns them and their thread."""
    user = await stack.standin.add_member(name)
    consent = await answer(stack, await stack.standin.slash_command(user, "join"))
    agreed = await answer(
        stack, await stack.standin.click(user, consent.original, "parley:consent:1:agree")
    )
    done = await answer(
        stack,
        await stack.standin.click(user, agreed.original or consent.original, "parley:about:skip"),
    )
    assert "How it works" in texts(done)
    return user, thread_of(stack, user)


def thread_of(stack: Stack, user: User) -> Channel:
    threads = [t for t in stack.standin.threads() if user.id in t.member_ids]
    assert len(threads) == 1, f"{user.username} should have one private thread, has {threads}"
    return threads[0]


async def battle(stack: Stack, user: User, channel: Channel, ogg: bytes) -> tuple[dict, str]:
    """Send a voice message and wait for the answered battle; returns (message, battle id)."""
    sent = await stack.standin.send_voice_message(user, channel, ogg, 2.0)
    progress = await wait_reply(stack, channel, sent)
    battle_id = await wait_vote_buttons(stack, progress["id"])
    return stack.standin.message(progress["id"]), battle_id


def assert_anonymous(message: dict) -> None:
    shown = (message.get("content") or "") + " ".join(custom_ids(message))
    for word in SECRET_WORDS:
        assert word not in shown, f"{word!r} revealed before the vote: {shown!r}"


async def test_join_consent_demographics_instructions(stack: Stack, mod: User) -> None:
    alice = await stack.standin.add_member("alice")
    consent = await answer(stack, await stack.standin.slash_command(alice, "join"))
    assert consent.ephemeral
    assert "Consent (version 1)" in texts(consent)
    assert custom_ids(consent.original) == ["parley:consent:1:agree", "parley:consent:1:decline"]

    agreed = await answer(
        stack, await stack.standin.click(alice, consent.original, "parley:consent:1:agree")
    )
    assert agreed.type == UPDATE_MESSAGE
    assert "Thank you for joining" in texts(agreed)
    form = stack.standin.message(consent.original["id"])
    opened = await stack.standin.click(alice, form, "parley:about:open")
    assert (await answer(stack, opened)).type == MODAL
    submitted = await stack.standin.submit_modal(
        alice, opened, {"age_band": "25-34", "first_language": "Welsh"}
    )
    instructions = texts(await answer(stack, submitted))
    assert "How it works" in instructions
    thread = thread_of(stack, alice)
    assert f"<#{thread.id}>" in instructions

    mine = await answer(stack, await stack.standin.slash_command(alice, "mydata"))
    assert mine.ephemeral
    assert "25-34" in everything(stack, mine)
    assert "Welsh" in everything(stack, mine)
    # /join again: already in, straight to the instructions, same thread.
    again = await answer(stack, await stack.standin.slash_command(alice, "join"))
    assert "How it works" in texts(again)
    assert thread_of(stack, alice).id == thread.id


async def test_decline_stores_nothing(stack: Stack, mod: User) -> None:
    dora = await stack.standin.add_member("dora")
    consent = await answer(stack, await stack.standin.slash_command(dora, "join"))
    declined = await answer(
        stack, await stack.standin.click(dora, consent.original, "parley:consent:1:decline")
    )
    assert "nothing was stored" in texts(declined)
    mine = await answer(stack, await stack.standin.slash_command(dora, "mydata"))
    assert "consent" not in texts(mine).lower() or "null" in texts(mine).lower()


async def test_battle_vote_reveal_comment(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    bea, thread = await join(stack, "bea")
    message, battle_id = await battle(stack, bea, thread, voice_ogg)
    assert "**Model A**" in message["content"]
    assert "**Model B**" in message["content"]
    assert "I heard" in message["content"]
    assert_anonymous(message)
    assert set(buttons(message)) == {
        f"parley:vote:{battle_id}:a",
        f"parley:vote:{battle_id}:b",
        f"parley:vote:{battle_id}:tie",
        f"parley:vote:{battle_id}:bothbad",
        f"parley:comment:{battle_id}",
    }

    # Someone else's click.
    eve = await stack.standin.add_member("eve")
    other = await answer(
        stack, await forge_click(stack, eve, message, f"parley:vote:{battle_id}:b")
    )
    assert other.ephemeral
    assert "Only the person who started this battle" in texts(other)

    # A double click: both clicks arrive before the first is answered.
    first = await stack.standin.click(bea, message, f"parley:vote:{battle_id}:a")
    second = await stack.standin.click(bea, message, f"parley:vote:{battle_id}:a")
    responses = [await answer(stack, first), await answer(stack, second)]
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
    assert all(state[f"parley:vote:{battle_id}:{c}"] for c in ("a", "b", "tie", "bothbad"))
    assert not state[f"parley:comment:{battle_id}"]

    # A second vote, forged past the disabled buttons.
    late = await answer(
        stack, await forge_click(stack, bea, revealed, f"parley:vote:{battle_id}:b")
    )
    assert "already voted" in texts(late)

    # Comments: a good one, an empty one, one far too long.
    async def comment(text: str, *, forged: bool = False) -> str:
        opened = await stack.standin.click(bea, revealed, f"parley:comment:{battle_id}")
        assert (await answer(stack, opened)).type == MODAL
        if forged:
            submitted = await forge_modal_submit(stack, bea, opened, {"comment": text})
        else:
            submitted = await stack.standin.submit_modal(bea, opened, {"comment": text})
        return texts(await answer(stack, submitted))

    assert "comment was saved" in await comment("A understood my accent.")
    assert "empty" in await comment("   ")
    assert "empty" in await comment("", forged=True)
    # Discord's client enforces the input's max_length; a forged submit meets the bot's check.
    with pytest.raises(ValueError, match="allows 1000 characters"):
        await comment("x" * 5000)
    assert "the limit is 1,000" in await comment("x" * 5000, forged=True)
    mine = everything(stack, await answer(stack, await stack.standin.slash_command(bea, "mydata")))
    assert "A understood my accent." in mine
    assert "xxxxxxxxxx" not in mine


async def test_dm_audio_file_upload(stack: Stack, mod: User, speech_mp3: bytes) -> None:
    cleo, _ = await join(stack, "cleo")
    dm = stack.standin.dm_channel(cleo)
    sent = await stack.standin.send_message(
        cleo, dm, attachments=[("question.mp3", speech_mp3, "audio/mpeg")]
    )
    progress = await wait_reply(stack, dm, sent)
    battle_id = await wait_vote_buttons(stack, progress["id"])
    voted = await answer(
        stack, await stack.standin.click(cleo, progress["id"], f"parley:vote:{battle_id}:tie")
    )
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
    mod: User,
    case: str,
    expected: str,
    corrupt_ogg: bytes,
    twenty_minutes_wav: bytes,
) -> None:
    user, thread = await join(stack, f"bad-{case}")
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
    reply = await wait_reply(stack, thread, sent)
    message = await wait_content(stack, reply["id"], expected)
    assert "parley:vote" not in " ".join(custom_ids(message))
    if case == "thirty_mb":
        # Refused from the attachment's size: never downloaded.
        assert sent["attachments"][0]["id"] not in stack.standin.downloads


async def test_voice_in_the_public_channel_is_redirected(
    stack: Stack, mod: User, voice_ogg: bytes
) -> None:
    rex, _ = await join(stack, "rex")
    sent = await stack.standin.send_voice_message(rex, "study", voice_ogg, 2.0)
    reply = await wait_reply(stack, "study", sent)
    assert "private thread" in reply["content"]
    assert sent["attachments"][0]["id"] not in stack.standin.downloads


async def test_voice_before_joining(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    stranger = await stack.standin.add_member("stranger")
    dm = stack.standin.dm_channel(stranger)
    sent = await stack.standin.send_voice_message(stranger, dm, voice_ogg, 2.0)
    reply = await wait_reply(stack, dm, sent)
    assert "join the study first" in reply["content"]


async def test_vote_before_replies(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    fay, thread = await join(stack, "fay")
    assert stack.fake_api is not None
    # Slow enough that the early click surely lands before the reply, even on a busy machine.
    stack.fake_api.slow_models[E2E_MODELS["beta"][1]] = 6.0
    try:
        sent = await stack.standin.send_voice_message(fay, thread, voice_ogg, 2.0)
        progress = await wait_reply(stack, thread, sent)
        # The buttons show at once, disabled until both replies are in.
        waiting = await stack.standin.wait_for(
            lambda: (m := stack.standin.message(progress["id"])) and buttons(m) and m,
            timeout=10,
            what="the disabled buttons",
        )
        assert all(buttons(waiting).values())
        battle_id = _battle_id_of(stack, progress)
        # A modified client can click a disabled button: the study core still says no.
        early = await answer(
            stack, await forge_click(stack, fay, waiting, f"parley:vote:{battle_id}:a")
        )
        assert early.ephemeral
        assert "wait until both replies are in" in texts(early)
        # Partial text streams into the message before the end.
        await wait_vote_buttons(stack, progress["id"])
    finally:
        stack.fake_api.slow_models.clear()


def _battle_id_of(stack: Stack, progress: dict) -> str | None:
    """The battle id behind a progress message, from the Discord refs the bot keeps."""
    client = stack.redis_client()
    try:
        for key in client.scan_iter("parley:battle:*"):
            raw = client.hget(key, "ui.message_id")
            if raw is not None and raw.decode().strip('"') == progress["id"]:
                return key.decode().rsplit(":", 1)[1]
    finally:
        client.close()
    return None


async def test_replies_stream_within_the_edit_rate(
    stack: Stack, mod: User, voice_ogg: bytes
) -> None:
    max_, thread = await join(stack, "max")
    assert stack.fake_api is not None
    stack.fake_api.chunk_delay_s = 0.5
    try:
        sent = await stack.standin.send_voice_message(max_, thread, voice_ogg, 2.0)
        progress = await wait_reply(stack, thread, sent)
        streaming = await wait_content(stack, progress["id"], "▌", timeout=30)
        assert_anonymous(streaming)
        await wait_vote_buttons(stack, progress["id"])
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


async def test_long_replies_are_cut_and_attached(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    nia, thread = await join(stack, "nia")
    assert stack.fake_api is not None
    long_reply = " ".join(f"word{i}" for i in range(700))  # ~6,000 characters
    # The fake API runs in this process: an instance attribute replaces its canned reply.
    stack.fake_api.reply_for = lambda seconds, history_turns: long_reply  # type: ignore[method-assign]
    try:
        message, _ = await battle(stack, nia, thread, voice_ogg)
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
    stack: Stack, mod: User, voice_ogg: bytes
) -> None:
    ona, ona_thread = await join(stack, "ona")
    pia, pia_thread = await join(stack, "pia")
    await stack.stop_worker()
    try:
        first = await stack.standin.send_voice_message(ona, ona_thread, voice_ogg, 2.0)
        first_progress = await wait_reply(stack, ona_thread, first)
        await stack.standin.wait_for(
            lambda: buttons(stack.standin.message(first_progress["id"])), timeout=10
        )
        second = await stack.standin.send_voice_message(pia, pia_thread, voice_ogg, 2.0)
        second_progress = await wait_reply(stack, pia_thread, second)
        await wait_content(stack, second_progress["id"], "1 message is ahead of yours")
    finally:
        await stack.start_worker()
    await wait_vote_buttons(stack, first_progress["id"])
    await wait_vote_buttons(stack, second_progress["id"])


async def test_discord_rate_limits_and_errors_are_ridden_out(
    stack: Stack, mod: User, voice_ogg: bytes
) -> None:
    sam, thread = await join(stack, "sam")
    # Message edits meet 429s first, then a 502: discord.py waits and retries.
    stack.standin.fail_next("PATCH", "/channels/*/messages/*", status=429, times=3, retry_after=0.3)
    stack.standin.fail_next("PATCH", "/channels/*/messages/*", status=502, times=1)
    message, battle_id = await battle(stack, sam, thread, voice_ogg)
    assert "I heard" in message["content"]
    voted = await answer(
        stack, await stack.standin.click(sam, message, f"parley:vote:{battle_id}:a")
    )
    assert voted.type == UPDATE_MESSAGE


async def test_failed_model_takes_no_vote(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    assert "broken" in await moderate(stack, mod, "models", roster="alpha,broken")
    try:
        gil, thread = await join(stack, "gil")
        sent = await stack.standin.send_voice_message(gil, thread, voice_ogg, 2.0)
        progress = await wait_reply(stack, thread, sent)
        failed = await wait_content(stack, progress["id"], "could not answer this time", timeout=30)
        assert not custom_ids(failed)
        assert_anonymous(failed)
        # No buttons left to vote with, and the core has the battle as failed.
        battle_id = _battle_id_of(stack, progress)
        client = stack.redis_client()
        try:
            assert client.hget(f"parley:battle:{battle_id}", "status") == b"failed"
        finally:
            client.close()
    finally:
        await moderate(stack, mod, "models", roster="alpha,beta")


async def test_withdraw_with_confirmation(stack: Stack, mod: User) -> None:
    hal, _ = await join(stack, "hal")
    asked = await answer(stack, await stack.standin.slash_command(hal, "withdraw"))
    assert asked.ephemeral
    assert "Are you sure" in texts(asked)
    confirm = f"parley:withdraw:{hal.id}:confirm"
    assert confirm in custom_ids(asked.original)
    ivy = await stack.standin.add_member("ivy")
    wrong = await answer(stack, await forge_click(stack, ivy, asked.original, confirm))
    assert "someone else's" in texts(wrong)
    done = await answer(stack, await stack.standin.click(hal, asked.original, confirm))
    assert "your data was deleted" in texts(done)
    mine = everything(stack, await answer(stack, await stack.standin.slash_command(hal, "mydata")))
    assert "withdrawn" in mine


async def test_withdraw_while_replies_are_on_their_way(
    stack: Stack, mod: User, voice_ogg: bytes
) -> None:
    quy, thread = await join(stack, "quy")
    assert stack.fake_api is not None
    stack.fake_api.slow_models[E2E_MODELS["alpha"][1]] = 1.5
    stack.fake_api.slow_models[E2E_MODELS["beta"][1]] = 1.5
    client = stack.redis_client()
    try:
        before = results_added(client)
        sent = await stack.standin.send_voice_message(quy, thread, voice_ogg, 2.0)
        progress = await wait_reply(stack, thread, sent)
        await stack.standin.wait_for(
            lambda: buttons(stack.standin.message(progress["id"])), timeout=10, what="buttons"
        )
        asked = await answer(stack, await stack.standin.slash_command(quy, "withdraw"))
        confirm = f"parley:withdraw:{quy.id}:confirm"
        await answer(stack, await stack.standin.click(quy, asked.original, confirm))
        # The late results meet a battle that is gone: acknowledged, nothing posted.
        await stack.standin.wait_for(
            lambda: results_added(client) >= before + 2 and results_all_handled(client),
            timeout=30,
            what="both late results, acknowledged",
        )
        await stack.standin.wait_for(
            lambda: thread.payload["thread_metadata"].get("locked"), timeout=15, what="closing"
        )
        assert "Thanks for voting" not in stack.standin.message(progress["id"])["content"]
        # Their recording is deleted from Discord too, and their thread closed.
        assert not [m for m in stack.standin.messages(thread) if m["author"]["id"] == quy.id]
        assert thread.payload["thread_metadata"]["archived"] is True
        assert thread.payload["thread_metadata"]["locked"] is True
    finally:
        stack.fake_api.slow_models.clear()
        client.close()


async def test_restart_between_answer_and_vote(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    jo, thread = await join(stack, "jo")
    message, battle_id = await battle(stack, jo, thread, voice_ogg)
    await stack.restart_bot()
    voted = await answer(
        stack, await stack.standin.click(jo, message, f"parley:vote:{battle_id}:b")
    )
    assert voted.type == UPDATE_MESSAGE
    assert "Thanks for voting (B is better)" in texts(voted)


async def test_results_while_bot_down_shown_once(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    kai, thread = await join(stack, "kai")
    assert stack.fake_api is not None
    stack.fake_api.slow_models[E2E_MODELS["alpha"][1]] = 2.0
    stack.fake_api.slow_models[E2E_MODELS["beta"][1]] = 2.0
    client = stack.redis_client()
    try:
        before = results_added(client)
        sent = await stack.standin.send_voice_message(kai, thread, voice_ogg, 2.0)
        progress = await wait_reply(stack, thread, sent)
        # The disabled buttons come once both jobs are enqueued: then the bot may die.
        await stack.standin.wait_for(
            lambda: buttons(stack.standin.message(progress["id"])), timeout=10, what="buttons"
        )
        await stack.stop_bot(kill=True)
        await stack.standin.wait_for(
            lambda: results_added(client) >= before + 2, timeout=30, what="both results"
        )
        count = len(bot_messages(stack, thread))
        await stack.start_bot()
        battle_id = await wait_vote_buttons(stack, progress["id"])
        await asyncio.sleep(1.0)
        assert len(bot_messages(stack, thread)) == count, "a re-delivered result posted again"
        voted = await answer(
            stack, await stack.standin.click(kai, progress["id"], f"parley:vote:{battle_id}:a")
        )
        assert voted.type == UPDATE_MESSAGE
        pending = client.xpending("parley:results", "bot")
        assert pending["pending"] == 0
    finally:
        stack.fake_api.slow_models.clear()
        client.close()


async def test_gateway_reconnect_and_resume(stack: Stack, mod: User, voice_ogg: bytes) -> None:
    lu, thread = await join(stack, "lu")
    assert await stack.standin.send_reconnect() == 1
    await stack.standin.wait_for_resume(1, timeout=20)
    sent = await stack.standin.send_message(lu, thread, "still there?")
    assert "I only take voice messages" in (await wait_reply(stack, thread, sent))["content"]
    await stack.standin.drop_gateway(abrupt=True)
    await stack.standin.wait_for_resume(2, timeout=30)
    _, battle_id = await battle(stack, lu, thread, voice_ogg)
    assert battle_id
    # A session Discord will not resume: the bot identifies afresh and goes on.
    await stack.standin.invalidate_session(resumable=False)
    await stack.wait_reidentify()
    sent = await stack.standin.send_message(lu, thread, "and now?")
    assert "I only take voice messages" in (await wait_reply(stack, thread, sent))["content"]


async def test_no_tracebacks_in_the_bot_log(stack: Stack) -> None:
    unknown = [f"{c.method} {c.path}" for c in stack.standin.unknown_routes()]
    assert not unknown, f"the bot called routes Discord does not have: {unknown}"
    log = stack.bot_log()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]
