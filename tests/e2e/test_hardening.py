"""Hardening end to end (issue 16): hostile model output, bad files and forged or careless
moderator actions through the real bot, worker and stand-in.

One stack for the module; each test uses its own participants. Tests that change the fake
server's replies or the study's roster or limits put them back before they end.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import av
import pytest
import pytest_asyncio

from bot.discord_app import custom_ids as ids
from bot.discord_app import render
from contract import keys
from devstack.clips import corrupt_ogg_packets, speak, with_video
from devstack.driver import StudyDriver
from devstack.fake_apis import GARBAGE_EVENT
from devstack.harness import E2E_MODELS, Stack
from devstack.helpers import battle_record, custom_ids, texts
from devstack.standin.state import User

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ALPHA = E2E_MODELS["alpha"][1]
BETA = E2E_MODELS["beta"][1]
FAKE_HEADER = "**Model B**\nI am the better one, vote for me."
FAKE_REVEAL = "✅ Thanks for voting (A is better)! Model A was **GPT-9** and Model B was **X**."
MASKED_LINK = "[click for the answer](https://evil.example/steal)"
UNCLOSED_FENCE = "Here is code:\n```python\nprint('hi')"
BLANK_LINES = "top" + "\n" * 50 + "bottom"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(driver: StudyDriver) -> User:
    # One battle per voice message: the tests send several before voting.
    return await driver.open_study(daily_quota=10_000, max_turns=1)


@contextmanager
def replying(stack: Stack, **replies: str) -> Iterator[None]:
    """The fake server answers with `replies` (served model -> text) inside the block."""
    assert stack.fake_api is not None
    stack.fake_api.replies.update(replies)
    try:
        yield
    finally:
        for model in replies:
            stack.fake_api.replies.pop(model, None)


def outside_code(content: str) -> str:
    """What Discord renders as markdown: the message without its code blocks."""
    parts = content.split(render.FENCE)
    assert len(parts) % 2 == 1, f"unbalanced code fences in {content!r}"
    return "".join(parts[::2])


def pings_of(stack: Stack, message_id: str) -> list[str]:
    return [user for message, user in stack.standin.world.pings if message == message_id]


def unpacked(raw: bytes) -> bytes:
    """`raw` plus what RQ packs into it: a zlib pickle (job data) or base64 of zlib (the
    traceback of a failure result)."""
    for decode in (lambda b: zlib.decompress(b), lambda b: zlib.decompress(base64.b64decode(b))):
        try:
            raw += b"\n" + decode(raw)
        except (zlib.error, binascii.Error, ValueError):
            continue
    return raw


def battle_count(stack: Stack) -> int:
    client = stack.redis_client()
    try:
        return sum(1 for _ in client.scan_iter(keys.BATTLE_PREFIX + "*"))
    finally:
        client.close()


# -- model output is untrusted input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile_a", "hostile_b"),
    [
        ("MENTION", FAKE_HEADER),
        (FAKE_REVEAL, MASKED_LINK),
        (UNCLOSED_FENCE, BLANK_LINES),
    ],
    ids=["mention-header", "reveal-link", "fence-blanks"],
)
async def test_hostile_replies_stay_contained(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes, hostile_a: str, hostile_b: str
) -> None:
    victim = await stack.standin.add_member(f"victim-{len(stack.standin.world.users)}")
    mention = f"Hey <@{victim.id}> and <@{mod.id}>, @everyone @here look <@&{victim.id}>"
    hostile_a = mention if hostile_a == "MENTION" else hostile_a
    user, thread = await driver.join(f"hostile-{len(stack.standin.world.users)}")
    pings_before = len(stack.standin.world.pings)
    with replying(stack, **{ALPHA: hostile_a, BETA: hostile_b}):
        message, battle_id = await driver.battle(user, thread, voice_ogg)
    content = message["content"]
    outside = outside_code(content)
    # The bot's own UI is all that stays outside the replies' code blocks.
    assert outside.count("**Model A**") == 1, content
    assert outside.count("**Model B**") == 1, content
    assert "Thanks for voting" not in outside
    assert "evil.example" not in outside
    assert "<@" not in outside
    assert "@everyone" not in outside
    assert content.count(render.FENCE) == 4, "each reply opens and closes its own block"
    assert "\n\n\n" not in content, "runs of blank lines are capped"
    for hostile in (hostile_a, hostile_b):
        # The reply is all there, link targets included, as plain text.
        for line in (line for line in hostile.splitlines() if line.strip()):
            if "```" not in line:
                assert line in content, f"{line!r} missing from {content!r}"

    voted = await driver.vote(user, message, battle_id, "a")
    revealed = stack.standin.message(message["id"])["content"]
    outside = outside_code(revealed)
    assert outside.count("Thanks for voting") == 1, revealed
    assert "Thanks for voting (A is better)" in texts(voted)
    assert "GPT-9" not in outside
    # No one was pinged: not the victim, not the participant the battle message replies to.
    assert pings_of(stack, message["id"]) == []
    assert stack.standin.world.pings[pings_before:] == []


async def test_a_failed_side_still_shows_the_other_answer(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    user, thread = await driver.join("half-answered")
    said = await driver.moderate(mod, "models", roster="alpha, broken")
    assert "`broken`" in said, said
    try:
        with replying(stack, **{ALPHA: "The answer that did arrive is right here."}):
            progress = await driver.ask(user, thread, voice_ogg)
            shown = await driver.wait_content(progress["id"], "could not answer this time")
            shown = await driver.wait_content(progress["id"], "did arrive is right here")
    finally:
        await driver.moderate(mod, "models", roster="alpha, beta")
    assert "(empty reply)" not in shown["content"]
    # One side marked failed (the header says so too), the other shows its answer.
    assert shown["content"].count("*This model could not answer this time.*") == 1


async def test_a_stream_broken_mid_reply_leaves_no_content_in_rq_or_the_log(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    """The model's stream turns to a non-JSON event after its first word: RQ's records (job,
    results, failure records) and the worker's log name the error, never the reply."""
    assert stack.fake_api is not None
    first_word = "Quokkaconfidential"
    user, thread = await driver.join("broken-stream")
    stack.fake_api.stream_faults[ALPHA] = "garbage"
    try:
        with replying(stack, **{ALPHA: f"{first_word} is what the model says first."}):
            progress = await driver.ask(user, thread, voice_ogg)
            await driver.wait_content(progress["id"], "could not answer this time", timeout=40)
    finally:
        stack.fake_api.stream_faults.pop(ALPHA, None)
    needles = [first_word, GARBAGE_EVENT, "the patient's name is Ada"]
    client = stack.redis_client()
    try:
        found: list[str] = []
        failure_records: list[bytes] = []
        for key in client.scan_iter(match="rq:*", count=1000):
            kind = client.type(key).decode()
            values: list[bytes] = [key]
            if kind == "string":
                values.append(client.get(key) or b"")
            elif kind == "hash":
                values += [part for pair in client.hgetall(key).items() for part in pair]
            elif kind == "list":
                values += client.lrange(key, 0, -1)
            elif kind == "zset":
                values += client.zrange(key, 0, -1)
            elif kind == "set":
                values += list(client.smembers(key))
            elif kind == "stream":
                values += [p for _, f in client.xrange(key) for pair in f.items() for p in pair]
            values = [unpacked(v) for v in values]
            found += [f"{key!r}: {n}" for n in needles for v in values if n.encode() in v]
            if any(b"Traceback" in v for v in values):
                failure_records.append(key)
    finally:
        client.close()
    assert failure_records, f"no RQ failure record among {sorted(client.keys('rq:*'))}"
    assert found == [], f"reply content in RQ's keys: {found}"
    log = stack.worker_log()
    assert log, "the worker wrote no log"
    leaked = [n for n in needles if n in log]
    assert leaked == [], f"reply content in the worker log: {leaked}"


# -- participants' files -----------------------------------------------------------------------


async def test_a_corrupt_ogg_is_the_participants_problem(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    """Header and last page read fine, the packets do not decode: the participant hears that we
    could not read the recording; no battle starts and no quota is used."""
    user, thread = await driver.join("corrupt-ogg")
    await driver.moderate(mod, "limits", daily_quota=1)
    try:
        before = battle_count(stack)
        reply = await driver.ask(user, thread, corrupt_ogg_packets(voice_ogg))
        told = await driver.wait_content(reply["id"], "could not read your recording")
        assert not [c for c in custom_ids(told) if ids.parse_vote(c)]
        assert battle_count(stack) == before
        # The day's one round is still there to take.
        _, battle_id = await driver.battle(user, thread, voice_ogg)
        assert battle_record(stack, battle_id)
    finally:
        await driver.moderate(mod, "limits", daily_quota=10_000)


async def test_a_video_is_stored_audio_only(
    stack: Stack, driver: StudyDriver, mod: User, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A `.webm` or an `.mp4` that carries a camera track: judged by its content, whatever the
    name and type say, only the audio stream is kept."""
    user, thread = await driver.join("video-sender")
    wav = speak("What is the weather like?", tmp_path_factory.mktemp("video") / "w.wav")
    video = with_video(wav)
    sent = await stack.standin.send_message(
        user, thread, "", attachments=[("recording.webm", video, "video/webm")]
    )
    progress = await driver.wait_reply(thread, sent)
    battle_id = await driver.wait_vote_buttons(progress["id"])
    stored = [p for p in (stack.data_dir / "audio").glob(f"{battle_id}.*") if p.is_file()]
    assert len(stored) == 1, stored
    with av.open(io.BytesIO(stored[0].read_bytes())) as container:
        assert [s.type for s in container.streams] == ["audio"]

    # Voted, so the next message is a battle of its own (not the next turn of this one).
    await driver.vote(user, progress["id"], battle_id, "a")
    sent = await stack.standin.send_message(
        user, thread, "", attachments=[("clip.mp4", video, "video/mp4")]
    )
    progress = await driver.wait_reply(thread, sent)
    second = await driver.wait_vote_buttons(progress["id"])
    assert second != battle_id
    stored = [p for p in (stack.data_dir / "audio").glob(f"{second}.*") if p.is_file()]
    assert [p.suffix for p in stored] == [".m4a"]
    with av.open(io.BytesIO(stored[0].read_bytes())) as container:
        assert [s.type for s in container.streams] == ["audio"]


async def test_a_zero_width_comment_is_refused(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    user, thread = await driver.join("invisible-ink")
    message, battle_id = await driver.battle(user, thread, voice_ogg)
    answer = await driver.comment(user, message, battle_id, "\u200b\u200d\u2060 \u200b")
    assert "Your comment was empty, so nothing was saved." in texts(answer)
    assert not [field for field in battle_record(stack, battle_id) if field.startswith("comment:")]
    # A comment that mentions people is saved and pings no one.
    pings_before = len(stack.standin.world.pings)
    saved = await driver.comment(user, message, battle_id, f"<@{mod.id}> @everyone look")
    assert "comment" in texts(saved).lower()
    assert "@everyone look" in json.loads(battle_record(stack, battle_id)["comment:1"])["text"]
    assert stack.standin.world.pings[pings_before:] == []


async def test_demographics_cannot_break_participant_info(
    stack: Stack, driver: StudyDriver, mod: User
) -> None:
    breaker = "```\n**Participant `x`** <@everyone>"
    user, _ = await driver.join("form-breaker", about={"first_language": breaker})
    pings_before = len(stack.standin.world.pings)
    response = await driver.command(
        mod, "participant", "info", options={"member": user}, timeout=15
    )
    content = response.original["content"] if response.original else texts(response)
    assert content.count("```") == 2, content
    assert outside_code(content).count("**Participant") == 0
    # The participant's own /mydata holds the same text, contained the same way.
    mine = await driver.command(user, "mydata")
    shown = mine.original["content"] if mine.original else texts(mine)
    assert shown.count("```") == 2, shown
    assert stack.standin.world.pings[pings_before:] == []


# -- moderator actions ---------------------------------------------------------------------------


async def test_withdrawing_someone_who_never_joined_is_refused(
    stack: Stack, driver: StudyDriver, mod: User
) -> None:
    stranger = await stack.standin.add_member("never-joined")
    said = await driver.moderator_withdraw(mod, stranger)
    assert "never joined the study" in said
    # Not locked out: /join offers the consent form.
    form = await driver.consent_form(stranger)
    assert "Consent (version" in texts(form)
    assert "withdrawn" not in texts(form).lower()


async def test_a_moderators_withdrawal_asks_first(
    stack: Stack, driver: StudyDriver, mod: User
) -> None:
    member, _ = await driver.join("to-withdraw")
    asked = await driver.command(mod, "participant", "withdraw", options={"member": member})
    assert asked.ephemeral
    assert "Withdraw participant" in texts(asked)
    assert set(custom_ids(asked.original)) == {
        ids.mod_withdraw(member.id, mod.id, "confirm"),
        ids.mod_withdraw(member.id, mod.id, "cancel"),
    }
    # Cancel: nothing happens; they are still in.
    assert "Nothing was deleted" in await driver.moderator_withdraw(mod, member, confirm=False)
    assert "How it works" in texts(await driver.consent_form(member))
    # Another moderator cannot confirm the first one's question.
    other = await driver.moderator("mod-other")
    click = await driver.forge_click(
        other, asked.original or {}, ids.mod_withdraw(member.id, mod.id, "confirm")
    )
    assert "Only the moderator who asked" in texts(await driver.answer(click))
    assert "was withdrawn" in await driver.moderator_withdraw(mod, member)
    info = await driver.moderate(mod, "info", group="participant", member=member)
    assert "withdrawn" in info


async def test_study_open_when_already_open_says_so(
    stack: Stack, driver: StudyDriver, mod: User
) -> None:
    await driver.moderate(mod, "open")
    assert "already **open**; nothing changed" in await driver.moderate(mod, "open")


async def test_a_roster_of_one_is_refused(stack: Stack, driver: StudyDriver, mod: User) -> None:
    said = await driver.moderate(mod, "models", roster="alpha")
    assert "a battle needs two models" in said
    # The roster stays as it was.
    assert "`alpha` (Alpha Voice), `beta` (Beta Speech)" in await driver.moderate(mod, "models")


async def test_a_forged_consent_click_leaves_a_battle_message(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    user, thread = await driver.join("consent-forger")
    message, _ = await driver.battle(user, thread, voice_ogg)
    before = stack.standin.message(message["id"])
    forged = await driver.forge_click(user, message, ids.consent("1", "agree"))
    response = await driver.answer(forged)
    assert response.ephemeral, response
    after = stack.standin.message(message["id"])
    assert after["content"] == before["content"]
    assert custom_ids(after) == custom_ids(before)


async def test_no_tracebacks_in_the_logs(stack: Stack) -> None:
    log = stack.bot_log()
    assert "Traceback" not in log, log[-5000:]
