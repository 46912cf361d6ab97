"""Spoken replies end to end: `/study replies`, API models on the local fake server voiced by the
`openai_speech` TTS on the same fake, the bot, a worker and the Discord stand-in."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
import pytest_asyncio

from bot.export import battle_row
from contract import keys
from contract.audio import SAMPLE_RATE, decode, probe
from devstack.driver import StudyDriver
from devstack.fake_apis import voice_pitch
from devstack.harness import E2E_MODELS, E2E_TTS, Stack
from devstack.helpers import battle_record
from devstack.standin.state import User

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The e2e stack with a study voice ([tts] → the fake's /audio/speech)."""
    the_stack = Stack(tmp_path_factory.mktemp("speech"), tts=True)
    try:
        await the_stack.start()
        yield the_stack
    finally:
        await the_stack.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mod(driver: StudyDriver) -> User:
    return await driver.open_study()


def dominant_hz(data: bytes) -> float:
    samples = decode(data, 600)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


def tags(data: bytes) -> dict[str, str]:
    with av.open(io.BytesIO(data)) as container:
        found = dict(container.metadata)
        for stream in container.streams:
            found.update(stream.metadata)
    return found


def spoken_files(stack: Stack, message: dict) -> dict[str, bytes]:
    return {
        a["filename"]: stack.standin.attachment_bytes(a) for a in message.get("attachments") or []
    }


def model_words(text: str) -> list[str]:
    """Every way a model could be named: ids, display names, served names."""
    found = []
    for model_id, (display, served) in E2E_MODELS.items():
        found += [w for w in (model_id, display, served) if w.lower() in text.lower()]
    return found


async def test_replies_command_shows_and_sets_the_mode(driver: StudyDriver, mod: User) -> None:
    assert "**Replies:** text" in await driver.moderate(mod, "replies")
    assert "**Replies:** speech" in await driver.moderate(mod, "replies", mode="speech")
    assert "**Replies:** speech" in await driver.moderate(mod, "models")


async def test_speech_mode_replies_arrive_as_audio_before_the_vote_in_one_voice(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    await driver.moderate(mod, "replies", mode="speech")
    assert stack.fake_api is not None
    before = len(stack.fake_api.speech_requests)
    user, thread = await driver.join("listener")
    message, battle_id = await driver.battle(user, thread, voice_ogg)

    # The message that carries the vote buttons carries both spoken replies.
    files = spoken_files(stack, message)
    assert sorted(files) == ["reply-a.ogg", "reply-b.ogg"]
    for data in files.values():
        info = probe(data)
        assert (info.container, info.codec, info.channels) == ("ogg", "opus", 1)
        assert info.duration_s > 0.5
        assert tags(data) == {}  # the fake server's "voice alloy" title is gone
        assert dominant_hz(data) == pytest.approx(voice_pitch(E2E_TTS["voice"]), abs=5)
    # Heard, not read: no reply text, no model named, anywhere on the message.
    record = battle_record(stack, battle_id)
    replies = {side: json.loads(record[f"reply_{side}"]) for side in "ab"}
    for side in "ab":
        assert replies[side]["text"] not in message["content"]
    assert "reply-a.ogg" in message["content"]
    assert not model_words(message["content"] + " ".join(files))

    # One voice for both sides, reading each side's own text.
    spoken = stack.fake_api.speech_requests[before:]
    assert {r["voice"] for r in spoken} == {E2E_TTS["voice"]}
    assert sorted(r["input"] for r in spoken) == sorted(replies[s]["text"] for s in "ab")

    # The durations are kept and exported.
    assert record["reply_mode"] == "speech"
    row = battle_row(record)
    assert row["reply_mode"] == "speech"
    for side in "ab":
        assert row[f"speech_seconds_{side}"] == pytest.approx(
            probe(files[f"reply-{side}.ogg"]).duration_s, abs=0.1
        )

    voted = await driver.vote(user, message["id"], battle_id, "a")
    assert "Thanks for voting" in driver.read(voted)
    # After the vote the replies may be read too, and the audio stays.
    shown = stack.standin.message(message["id"])
    assert replies["a"]["text"] in shown["content"]
    assert sorted(spoken_files(stack, shown)) == ["reply-a.ogg", "reply-b.ogg"]

    # Withdrawal takes the spoken replies with the rest.
    client = stack.redis_client()
    try:
        assert client.exists(*(keys.reply_audio_key(battle_id, s) for s in "ab")) == 2
        await driver.withdraw(user)
        assert client.exists(*(keys.reply_audio_key(battle_id, s) for s in "ab")) == 0
    finally:
        client.close()


async def test_both_mode_shows_the_text_with_the_audio(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    await driver.moderate(mod, "replies", mode="both")
    user, thread = await driver.join("reader")
    message, battle_id = await driver.battle(user, thread, voice_ogg)
    record = battle_record(stack, battle_id)
    for side in "ab":
        assert json.loads(record[f"reply_{side}"])["text"] in message["content"]
    assert sorted(spoken_files(stack, message)) == ["reply-a.ogg", "reply-b.ogg"]


async def test_text_mode_sends_no_audio_and_asks_for_none(
    stack: Stack, driver: StudyDriver, mod: User, voice_ogg: bytes
) -> None:
    assert "**Replies:** text" in await driver.moderate(mod, "replies", mode="text")
    assert stack.fake_api is not None
    before = len(stack.fake_api.speech_requests)
    user, thread = await driver.join("plain")
    message, battle_id = await driver.battle(user, thread, voice_ogg)
    assert not message.get("attachments")
    assert len(stack.fake_api.speech_requests) == before
    assert "reply_mode" not in battle_record(stack, battle_id)
