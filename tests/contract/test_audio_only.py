"""Only the audio of a participant's file is kept; the too-long message tells the truth."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest

from contract.audio import AudioError, audio_only, decode, probe
from devstack.clips import encode, speak, with_video


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speak("Hello, what is the capital of France?", tmp_path_factory.mktemp("c") / "q.wav")


def stream_types(data: bytes) -> list[str]:
    with av.open(io.BytesIO(data)) as container:
        return [s.type for s in container.streams]


def test_a_video_track_is_dropped(speech: bytes) -> None:
    mp4 = with_video(speech)
    assert stream_types(mp4) == ["video", "audio"]
    kept, suffix = audio_only(mp4, "mp4")
    assert stream_types(kept) == ["audio"]
    assert suffix == "m4a"
    assert probe(kept).codec == "aac"
    # The audio is copied, not re-encoded: the same samples decode from both.
    assert decode(kept, 60).shape == decode(mp4, 60).shape


def test_a_file_named_audio_is_judged_by_its_content(speech: bytes) -> None:
    kept, suffix = audio_only(with_video(speech), "ogg")  # a video file named .ogg
    assert stream_types(kept) == ["audio"]
    assert suffix == "m4a"


@pytest.mark.parametrize("fmt", ["wav", "ogg"])
def test_audio_only_files_come_back_unchanged(speech: bytes, fmt: str) -> None:
    data = speech if fmt == "wav" else encode(speech, "ogg", "libopus", 48_000)
    assert audio_only(data, fmt) == (data, fmt)


def test_not_audio_is_refused() -> None:
    with pytest.raises(AudioError) as info:
        audio_only(b"just some text, no audio here at all", "ogg")
    assert info.value.reason == "not_audio"


def test_too_long_message_gives_the_real_length_or_none(tmp_path: Path) -> None:
    text = " ".join(["This message goes on and on for a while."] * 6)
    wav = speak(text, tmp_path / "long.wav")
    with pytest.raises(AudioError) as header_known:
        decode(wav, 2.0)  # WAV headers state the length
    seconds = probe(wav).duration_s
    assert seconds is not None
    assert f"is {seconds:.0f} s long; the limit is 2 s" in str(header_known.value)
    webm = encode(wav, "webm", "libopus", 48_000, {"live": "1"})  # no duration in the header
    with pytest.raises(AudioError) as header_unknown:
        decode(webm, 2.0)
    assert "is longer than 2 s; the limit is 2 s" in str(header_unknown.value)
