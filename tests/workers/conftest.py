"""Fixtures for the workers tests: real speech clips, and local API servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.clips import FORMATS, encode, speak
from devstack.fake_apis import FakeApiServer


@pytest.fixture(scope="session")
def speech_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """'Hello, what is the capital of France?' as wav (espeak-ng) and each upload format."""
    wav = speak("Hello, what is the capital of France?", tmp_path_factory.mktemp("clips") / "q.wav")
    clips = {"wav": wav}
    for name, (container, codec, rate) in FORMATS.items():
        clips[name] = encode(wav, container, codec, rate)
    return clips


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    text = " ".join(["This is a long message that goes on and on."] * 8)
    wav = speak(text, tmp_path_factory.mktemp("clips") / "long.wav")
    return encode(wav, "ogg", "libopus", 48_000)


@pytest.fixture
def fake_api() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    yield server
    server.stop()


@pytest.fixture
def api_key_env(monkeypatch: pytest.MonkeyPatch, fake_api: FakeApiServer) -> str:
    """Both key variables set to the fake server's key."""
    assert fake_api.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", fake_api.api_key)
    monkeypatch.setenv("GEMINI_API_KEY", fake_api.api_key)
    return fake_api.api_key


def write_models(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
