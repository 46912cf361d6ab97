"""Bad input: the audio parsers and custom_id parsers on garbage, then the whole stack.

Pure parsers get hypothesis (bounded examples, no deadline). The end-to-end part drives the real
bot through the stand-in with a fixed set of seeded cases — attachments, form texts and forged
interaction payloads — and checks each time that the user got a polite answer and that the
study's Redis state is byte for byte what it was (`fuzz_state.snapshot`). The last test reads the
bot's log for tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import string
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.discord_app import custom_ids as ids
from bot.discord_app import render, views
from contract import keys
from contract.audio import AudioError, decode, probe
from devstack.clips import encode, speak
from devstack.driver import StudyDriver
from devstack.harness import Stack
from devstack.helpers import custom_ids, texts
from devstack.standin.state import Channel, User
from tests.reliability.fuzz_flow import pseudonym_of
from tests.reliability.fuzz_state import differences, snapshot

pytestmark = pytest.mark.reliability
# The stack is shared by the module's end-to-end tests, so they run on the module's event loop.
ON_STACK = pytest.mark.asyncio(loop_scope="module")

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAGIC = (b"OggS", b"ID3", b"RIFF", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"\x1aE\xdf\xa3", b"fLaC")
# Discord's limit on a custom_id.
CUSTOM_ID_MAX = 100


@pytest.fixture(scope="module")
def voice_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    wav = speak("What is the capital of France?", tmp_path_factory.mktemp("clips") / "q.wav")
    return encode(wav, "ogg", "libopus", 48_000)


# --- the audio parsers on garbage --------------------------------------------------------------


def only_audio_errors(data: bytes) -> None:
    """probe and decode either succeed or raise AudioError; anything else is a bug."""
    with contextlib.suppress(AudioError):
        probe(data)
    with contextlib.suppress(AudioError):
        decode(data, max_seconds=5.0)


@FUZZ
@given(st.binary(max_size=4096))
def test_audio_parsers_on_random_bytes(data: bytes) -> None:
    only_audio_errors(data)


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=4096))
def test_audio_parsers_on_bytes_that_start_like_audio(magic: bytes, rest: bytes) -> None:
    only_audio_errors(magic + rest)


@FUZZ
@given(data=st.data())
def test_audio_parsers_on_damaged_voice_messages(voice_ogg: bytes, data: st.DataObject) -> None:
    """Truncations, byte flips and splices of a real Discord-style Ogg/Opus clip."""
    clip = bytearray(voice_ogg)
    cut = data.draw(st.integers(0, len(clip)), label="cut")
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, len(clip) - 1), st.integers(1, 255)), max_size=8),
        label="flips",
    )
    for at, mask in flips:
        clip[at] ^= mask
    splice = data.draw(st.binary(max_size=512), label="splice")
    damaged = bytes(clip[:cut]) + splice
    only_audio_errors(damaged)


# --- the custom_id parsers -----------------------------------------------------------------------

TEMPLATES = {item.__name__: item.__discord_ui_compiled_template__ for item in views.DYNAMIC_ITEMS}


def parses(custom_id: str) -> list[str]:
    """The dynamic items whose template takes `custom_id` (discord.py uses fullmatch)."""
    return [name for name, pattern in TEMPLATES.items() if pattern.fullmatch(custom_id)]


def rebuild(custom_id: str) -> str:
    """Build the item a custom_id parses to and return the custom_id that item renders."""
    [name] = parses(custom_id)
    match = TEMPLATES[name].fullmatch(custom_id)
    if match is None:
        raise AssertionError(custom_id)
    fields = match.groupdict()
    item: Any
    if name == "VoteButton":
        item = views.VoteButton(fields["battle_id"], fields["choice"])
    elif name == "CommentButton":
        item = views.CommentButton(fields["battle_id"])
    elif name == "JoinButton":
        item = views.JoinButton()
    elif name == "ConsentButton":
        item = views.ConsentButton(fields["version"], fields["answer"])
    elif name == "AboutYouButton":
        item = views.AboutYouButton(fields["action"])
    elif name == "WithdrawButton":
        item = views.WithdrawButton(int(fields["user_id"]), fields["action"])
    else:
        raise AssertionError(f"a dynamic item this test does not know: {name}")
    return str(item.custom_id)


PREFIXES = (
    "parley:vote:",
    "parley:comment:",
    "parley:consent:",
    "parley:about:",
    "parley:withdraw:",
    "parley:join",
    "parley:",
    "",
)


@FUZZ
@given(st.sampled_from(PREFIXES), st.text(max_size=120))
def test_custom_id_parsers_take_only_what_the_bot_renders(prefix: str, rest: str) -> None:
    """Whatever parses, parses to exactly one item that renders the very same custom_id."""
    custom_id = prefix + rest
    matched = parses(custom_id)
    assert len(matched) <= 1, f"{custom_id!r} parses as {matched}"
    if matched:
        assert rebuild(custom_id) == custom_id
        assert len(custom_id) <= CUSTOM_ID_MAX


@FUZZ
@given(
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    st.sampled_from(["a", "b", "tie", "bothbad"]),
)
def test_every_battle_custom_id_round_trips(battle_id: str, choice: str) -> None:
    vote = views.VoteButton(battle_id, choice).custom_id
    comment = views.CommentButton(battle_id).custom_id
    for custom_id in (vote, comment):
        assert len(custom_id) <= CUSTOM_ID_MAX
        assert rebuild(custom_id) == custom_id


@pytest.mark.parametrize(
    "custom_id",
    [
        "",
        "parley",
        "parley:vote",
        "parley:vote::a",
        "parley:vote:abc",
        "parley:vote:abc:A",
        "parley:vote:abc:a ",
        "parley:vote:abc:a\n",
        "parley:vote:abc:alpha",  # a model id in place of a side
        "parley:vote:abc:a:extra",
        "parley:vote:" + "x" * 65 + ":a",
        "parley:vote:../../etc:a",
        "parley:vote:abc def:a",
        "parley:vote:ａｂｃ:a",  # full-width letters
        "PARLEY:VOTE:abc:a",
        "parley:comment:",
        "parley:comment:abc:def",
        "parley:consent::agree",
        "parley:consent:1:maybe",
        "parley:consent:" + "1" * 33 + ":agree",
        "parley:about:delete",
        "parley:join ",
        "parley:withdraw:-1:confirm",
        "parley:withdraw:1e9:confirm",
        "parley:withdraw:١٢٣:confirm",  # Arabic-Indic digits: \d would take them, [0-9] does not
        "parley:withdraw:" + "9" * 21 + ":confirm",
        "parley:withdraw:123:Confirm",
        "parley:commentmodal:abc:1234",  # a form's id is not a button
        "parley:demographics:abcdef",
    ],
)
def test_garbage_custom_ids_are_rejected(custom_id: str) -> None:
    assert parses(custom_id) == []


# --- the whole stack ---------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    the_stack = Stack(tmp_path_factory.mktemp("fuzz-stack"))
    try:
        await the_stack.start()
        yield the_stack
    finally:
        await the_stack.stop()


class World:
    """The study the e2e fuzzing works on: an owner with an answered battle and a voted one, and
    a second participant (mallory) who sends garbage and forges interactions."""

    def __init__(
        self,
        owner: User,
        mallory: User,
        mallory_thread: Channel,
        open_battle: tuple[dict, str],
        voted_battle: tuple[dict, str],
        own_battle: tuple[dict, str],
    ) -> None:
        self.owner = owner
        self.mallory = mallory
        self.mallory_thread = mallory_thread
        self.open_message, self.open_id = open_battle
        self.voted_message, self.voted_id = voted_battle
        self.own_message, self.own_id = own_battle


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(driver: StudyDriver, voice_ogg: bytes) -> World:
    await driver.open_study(daily_quota=10_000)
    owner, owner_thread = await driver.join("owner")
    mallory, mallory_thread = await driver.join("mallory")
    voted = await driver.battle(owner, owner_thread, voice_ogg)
    await driver.vote(owner, voted[0], voted[1], "a")
    open_ = await driver.battle(owner, owner_thread, voice_ogg)
    # Mallory's own battle is answered and not voted: forms on it must stay hers.
    own = await driver.battle(mallory, mallory_thread, voice_ogg)
    return World(owner, mallory, mallory_thread, open_, voted, own)


@contextlib.contextmanager
def state_unchanged(stack: Stack, what: str) -> Iterator[None]:
    client = stack.redis_client()
    try:
        before = snapshot(client)
        yield
        after = snapshot(client)
    finally:
        client.close()
    changed = differences(before, after)
    assert not changed, f"{what} changed the study's state: {changed}"


def no_buttons(message: dict[str, Any]) -> None:
    assert not [c for c in custom_ids(message) if ids.parse_vote(c)], message


PROGRESS = render.progress_header(None)
POLITE = re.compile(r"sorry|please|\bcan\b|\bonly\b|limit|doesn't|does not|damaged|look", re.I)


async def final_reply(
    driver: StudyDriver, channel: Channel, sent: dict[str, Any]
) -> dict[str, Any]:
    """The bot's reply to `sent` once it stopped saying "got your message"."""
    reply = await driver.wait_reply(channel, sent, timeout=15)

    def settled() -> dict[str, Any] | None:
        message = driver.standin.message(reply["id"])
        return message if not (message.get("content") or "").startswith(PROGRESS[:20]) else None

    return await driver.wait_for(settled, timeout=15, what=f"an answer to {sent['id']}")


def attachment_cases(voice_ogg: bytes) -> list[tuple[str, str, bytes, str]]:
    """(case id, filename, bytes, content type): a fixed, seeded set of bad uploads."""
    rng = np.random.default_rng(20261127)
    noise = {n: rng.bytes(n) for n in (1, 333, 5000)}
    cases = [
        (f"noise-{n}-{kind}", f"voice.{ext}", data, kind)
        for n, data in noise.items()
        for ext, kind in (("ogg", "audio/ogg"), ("mp3", "audio/mpeg"), ("bin", "audio/x-wav"))
    ]
    cases += [
        (f"magic-{magic[:4]!r}", "clip.ogg", magic + rng.bytes(2000), "audio/ogg")
        for magic in MAGIC
    ]
    cases += [
        (f"truncated-{cut}", "voice-message.ogg", voice_ogg[:cut], "audio/ogg")
        for cut in (4, 27, 60, 200, 1600, len(voice_ogg) // 2)
    ]
    flipped = bytearray(voice_ogg)
    for at in rng.integers(0, 300, size=40):
        flipped[int(at)] ^= 0xFF
    cases += [
        ("flipped-headers", "voice.ogg", bytes(flipped), "audio/ogg"),
        ("png-as-audio", "photo.ogg", b"\x89PNG\r\n\x1a\n" + rng.bytes(800), "audio/ogg"),
        ("html-as-mp3", "song.mp3", b"<!doctype html><script>alert(1)</script>", "audio/mpeg"),
        ("zip-as-wav", "a.wav", b"PK\x03\x04" + rng.bytes(500), "audio/wav; charset=binary"),
        ("text-as-text", "notes.txt", "naïve ünïcödé\u202e\x00".encode(), "text/plain"),
        ("pdf", "paper.pdf", b"%PDF-1.7\n" + rng.bytes(300), "application/pdf"),
        ("path-name", "../../../etc/passwd.ogg", rng.bytes(64), "audio/ogg"),
        ("odd-type", "x", rng.bytes(64), "audio/../../..;;;"),
    ]
    return cases


@ON_STACK
async def test_bad_attachments_get_a_polite_answer_and_change_nothing(
    stack: Stack, driver: StudyDriver, world: World, voice_ogg: bytes
) -> None:
    for case, filename, data, content_type in attachment_cases(voice_ogg):
        with state_unchanged(stack, case):
            sent = await stack.standin.send_message(
                world.mallory,
                world.mallory_thread,
                attachments=[(filename, data, content_type)],
            )
            reply = await final_reply(driver, world.mallory_thread, sent)
        assert POLITE.search(reply["content"]), f"{case}: {reply['content']!r}"
        no_buttons(reply)


@ON_STACK
async def test_huge_declared_sizes_are_refused_unread(
    stack: Stack, driver: StudyDriver, world: World
) -> None:
    standin = stack.standin
    thread = world.mallory_thread
    for size in (8_000_001, 2**31, 10**15):
        stored_file = ("huge.ogg", b"OggS" + bytes(60), "audio/ogg")
        with state_unchanged(stack, f"declared size {size}"):
            sent = await _lying_upload(stack, world.mallory, thread, stored_file, size)
            reply = await final_reply(driver, thread, sent)
        assert "MB" in reply["content"], reply["content"]
        assert sent["attachments"][0]["id"] not in standin.downloads
    # A voice message claiming to last a day is read, measured and refused for its real length.
    with state_unchanged(stack, "a voice message declaring 86,400 s"):
        sent = await standin.send_voice_message(
            world.mallory, thread, b"OggS" + bytes(2000), 86_400.0
        )
        reply = await final_reply(driver, thread, sent)
    assert POLITE.search(reply["content"]), reply["content"]


async def _lying_upload(
    stack: Stack, user: User, channel: Channel, upload: tuple[str, bytes, str], size: int
) -> dict[str, Any]:
    """A message whose attachment declares `size` bytes: the stand-in has no public way to make
    an attachment lie about its size, so build the payload as `send_message` does and edit it."""
    from devstack.standin.state import StoredFile

    standin = stack.standin
    name, data, content_type = upload
    payload = standin.world.attachment_payload(
        standin.base_url, channel.id, StoredFile(name, content_type, data)
    )
    payload["size"] = size
    return await standin._post(user, channel, "", [payload], flags=0, extra={})


def carrying(message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    """`message` as if it carried one button with `custom_id`: what an old message from an
    earlier version of the bot, or a tampered payload, looks like to the bot. Discord only
    sends clicks on buttons a message has, so the tests use the clicking user's own message."""
    button = {"type": 2, "style": 1, "label": "?", "custom_id": custom_id}
    return {**message, "components": [{"type": 1, "components": [button]}]}


@ON_STACK
async def test_forged_interactions_are_refused_and_change_nothing(
    stack: Stack, driver: StudyDriver, world: World
) -> None:
    rng = np.random.default_rng(7)
    tampered = {
        # Parsed by the bot, naming someone else's battle or one that does not exist.
        ids.vote(world.open_id, "a"): "Only the person who started this battle",
        ids.vote(world.voted_id, "b"): "Only the person who started this battle",
        ids.vote("0" * 16, "tie"): "no longer exists",
        ids.comment(world.open_id): "not your battle",
        ids.comment("f" * 16): "can't find",
        ids.withdraw(world.owner.id, "confirm"): "someone else's",
        ids.consent("0.9", "agree"): "consent form has changed",
    }
    unknown = [
        "vote:a",  # an older version's custom_id
        "parley:vote:x:alpha",  # a model id in place of a side
        f"parley:vote:{world.open_id}:a:alpha",
        "parley:admin",
        "🤖",
        "x" * 100,
        *("".join(rng.choice(list(string.printable), size=int(n))) for n in (1, 17, 64, 100)),
    ]
    cases = [(c, expected) for c, expected in tampered.items()]
    cases += [(c, views.UNKNOWN_BUTTON) for c in unknown]
    for custom_id, expected in cases:
        with state_unchanged(stack, custom_id):
            forged = await driver.forge_click(
                world.mallory, carrying(world.own_message, custom_id), custom_id
            )
            response = await driver.answer(forged, timeout=10)
        said = texts(response)
        assert expected in said, f"{custom_id!r}: {said!r}"
        assert response.ephemeral, response
    # A custom_id the message does not carry: discord.py drops it; the bot still answers.
    for custom_id in (ids.vote(world.open_id, "a"), ids.join()):
        with state_unchanged(stack, f"{custom_id} not on the message"):
            forged = await driver.forge_click(world.mallory, world.voted_message, custom_id)
            response = await driver.answer(forged, timeout=10)
        assert texts(response) == views.UNKNOWN_BUTTON


@ON_STACK
async def test_forged_form_submits_are_refused_and_change_nothing(
    stack: Stack, driver: StudyDriver, world: World
) -> None:
    """Form submits naming another person's battle, or a form the bot never showed."""
    for custom_id in (
        ids.comment_modal(world.open_id, "00000000"),
        ids.comment_modal(world.voted_id, "deadbeef"),
        ids.demographics_modal("000000000000"),
        "parley:unknown",
    ):
        with state_unchanged(stack, custom_id):
            forged = await driver.forge_submit(
                world.mallory, world.mallory_thread, custom_id, {ids.COMMENT_FIELD: "hi"}
            )
            response = await driver.answer(forged, timeout=10)
        assert response.ephemeral
        assert texts(response) == views.EXPIRED_FORM


MODAL_TEXTS = [
    "🎧🎤 naïve — ünïcödé ✓ 漢字 한국어 العربية",
    "line one\nline two\r\n\ttabbed",
    "zero\u200bwidth\u200d and \u202eright-to-left override",
    "<@everyone> @here <script>alert(1)</script> ```code``` **bold**",
    "a" * 1000,  # exactly the limit
    "\U0001f600" * 1000,  # 1,000 characters that are 2 UTF-16 units each
]
BAD_MODAL_TEXTS = [
    "",
    " \t\n ",
    "\u3000\u2003",  # ideographic and em spaces: whitespace to str.strip
    "a" * 1001,
    "b" * 4000,
    "c" * 20000,
]


@ON_STACK
async def test_comment_texts_are_stored_exactly_or_refused(
    stack: Stack, driver: StudyDriver, world: World
) -> None:
    """Odd but valid comments are stored as typed (trimmed); empty or over-long ones change
    nothing. The forms are submitted raw, past the Discord client's own max_length."""
    client = stack.redis_client()
    message = world.open_message
    battle_key = keys.battle(world.open_id)
    try:
        for text in BAD_MODAL_TEXTS:
            with state_unchanged(stack, f"comment {text[:20]!r}"):
                response = await driver.comment(
                    world.owner, message, world.open_id, text, forged=True
                )
            assert response.ephemeral
            assert "Nothing was saved" in texts(response) or "empty" in texts(response)
        for text in MODAL_TEXTS:
            response = await driver.comment(world.owner, message, world.open_id, text, forged=True)
            assert "comment was saved" in texts(response)
            n = int(client.hget(battle_key, "n_comments") or 0)
            stored = client.hget(battle_key, f"comment:{n}")  # numbered from 1
            assert stored is not None
            assert json.loads(stored)["text"] == text.strip()
    finally:
        client.close()


@ON_STACK
async def test_demographics_texts_are_bounded(
    stack: Stack, driver: StudyDriver, world: World
) -> None:
    standin = stack.standin
    user = await standin.add_member("form-fuzzer")
    consent = await driver.consent_form(user)
    agreed = await driver.consent(user, consent)
    form = standin.message((agreed.original or consent.original or {})["id"])
    values = {
        "age_band": "\x00\x01\x02" + "9" * 500,
        "gender": "\u202e" + "🙂" * 300,
        "first_language": "Cymraeg\r\n<script>",
        "country": " " * 50,
    }
    opened = await driver.open_form(user, form, ids.about("open"))
    submitted = await driver.forge_modal_submit(user, opened, values)
    assert "How it works" in texts(await driver.answer(submitted))
    client = stack.redis_client()
    try:
        pseudonym = pseudonym_of(user)
        raw = client.hget(keys.participant(pseudonym), "demographics")
        assert raw is not None
        stored = json.loads(raw)
    finally:
        client.close()
    assert len(stored["age_band"]) <= 20
    assert len(stored["gender"]) <= 40
    assert stored["first_language"] == "Cymraeg\r\n<script>"
    assert stored["country"] is None


@ON_STACK
async def test_no_tracebacks_in_the_logs(stack: Stack, world: World) -> None:
    await asyncio.sleep(0.5)  # let the bot log anything the last answers caused
    log = stack.bot_log()
    assert "Traceback" not in log, log[-5000:]
    assert " ERROR " not in log, log[-5000:]
    assert stack.standin.unknown_routes() == []
