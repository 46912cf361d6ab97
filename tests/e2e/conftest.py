"""Fixtures for the e2e tests: one whole stack per test module, its driver, real audio clips."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from devstack.clips import encode, speak
from devstack.driver import StudyDriver
from devstack.harness import Stack


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Redis, stand-in, fake model API, bot and worker, shared by a module's tests."""
    the_stack = Stack(tmp_path_factory.mktemp("stack"))
    try:
        await the_stack.start()
        yield the_stack
    finally:
        await the_stack.stop()


@pytest.fixture(scope="module")
def driver(stack: Stack) -> StudyDriver:
    """Plays the module's participants and moderators on its stack."""
    return StudyDriver(stack)


@pytest.fixture(scope="session")
def voice_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A Discord-style voice message: speech in Ogg/Opus, 48 kHz mono."""
    wav = speak("What is the capital of France?", tmp_path_factory.mktemp("clips") / "q.wav")
    return encode(wav, "ogg", "libopus", 48_000)


@pytest.fixture(scope="session")
def speech_mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    wav = speak("Tell me a joke about cats.", tmp_path_factory.mktemp("clips") / "j.wav")
    return encode(wav, "mp3", "libmp3lame")


@pytest.fixture(scope="session")
def twenty_minutes_wav() -> bytes:
    """A valid 20-minute WAV that stays small: 1 kHz, 8-bit mono silence (1.2 MB)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(1000)
        out.writeframes(bytes([128]) * 1000 * 60 * 20)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def corrupt_ogg(voice_ogg: bytes) -> bytes:
    """An Ogg that starts right and then turns to noise (a cut, damaged upload)."""
    return voice_ogg[:200] + bytes(range(256)) * 20


def e2e_dir() -> Path:
    return Path(__file__).resolve().parent
