"""contract.audio on real speech (espeak-ng) in every upload format, and on what must be refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from contract.audio import (
    PEAK_DBFS,
    SAMPLE_RATE,
    TARGET_DBFS,
    AudioError,
    dbfs,
    decode,
    encode_wav,
    load,
    normalise,
    probe,
)
from devstack.clips import encode, pcm_wav

EXPECTED = {
    "wav": ("pcm_s16le", "wav"),
    "ogg": ("opus", "ogg"),
    "mp3": ("mp3", "mp3"),
    "m4a": ("aac", "mov"),
    "webm": ("opus", "webm"),
}


@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_probe_reads_format_and_duration(speech_clips: dict[str, bytes], fmt: str) -> None:
    info = probe(speech_clips[fmt])
    codec, container = EXPECTED[fmt]
    assert info.codec.startswith(codec)
    assert container in info.container
    assert info.channels == 1
    assert info.sample_rate in (22_050, 48_000)
    assert info.duration_s == pytest.approx(2.43, abs=0.1)


@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_load_gives_normalised_16k_mono(speech_clips: dict[str, bytes], fmt: str) -> None:
    audio = load(speech_clips[fmt], max_seconds=60)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert audio.size / SAMPLE_RATE == pytest.approx(2.43, abs=0.1)
    assert dbfs(audio) == pytest.approx(TARGET_DBFS, abs=0.5)
    assert float(np.max(np.abs(audio))) <= 10 ** (PEAK_DBFS / 20) + 1e-6


def test_probe_browser_webm_without_a_header_duration(speech_clips: dict[str, bytes]) -> None:
    # MediaRecorder writes "live" webm: no duration in the header. probe() sums packet durations.
    live = encode(speech_clips["wav"], "webm", "libopus", 48_000, options={"live": "1"})
    info = probe(live)
    assert info.codec == "opus"
    assert info.duration_s == pytest.approx(2.43, abs=0.1)
    assert load(live, 60).size / SAMPLE_RATE == pytest.approx(2.43, abs=0.1)


def test_random_bytes_are_not_audio() -> None:
    junk = np.random.default_rng(7).bytes(4000)
    for call in (lambda: probe(junk), lambda: load(junk, 60)):
        with pytest.raises(AudioError) as info:
            call()
        assert info.value.reason == "not_audio"
        assert "does not look like audio" in str(info.value)


def test_text_file_is_not_audio() -> None:
    with pytest.raises(AudioError) as info:
        load(b"hello, this is a text file\n" * 10, 60)
    assert info.value.reason == "not_audio"


def test_ogg_cut_inside_its_headers_is_corrupt(speech_clips: dict[str, bytes]) -> None:
    with pytest.raises(AudioError) as info:
        load(speech_clips["ogg"][:300], 60)
    assert info.value.reason == "corrupt"


def test_ogg_cut_halfway_decodes_what_is_there(speech_clips: dict[str, bytes]) -> None:
    # A voice message cut off in transfer still holds the first half of the speech.
    whole = load(speech_clips["ogg"], 60)
    half = load(speech_clips["ogg"][: len(speech_clips["ogg"]) // 2], 60)
    assert 0.3 * whole.size < half.size < 0.8 * whole.size


def test_empty_and_too_short() -> None:
    with pytest.raises(AudioError) as info:
        probe(b"")
    assert info.value.reason == "empty"
    blip = encode(pcm_wav(np.full(320, 0.3)), "ogg", "libopus", 48_000)  # 20 ms
    with pytest.raises(AudioError) as info:
        load(blip, 60)
    assert info.value.reason == "empty"


def test_silence_is_refused() -> None:
    silent = encode(pcm_wav(np.zeros(2 * SAMPLE_RATE)), "ogg", "libopus", 48_000)
    with pytest.raises(AudioError) as info:
        load(silent, 60)
    assert info.value.reason == "silent"
    assert "microphone" in str(info.value)


def test_too_long_is_refused_with_the_limit(long_speech: bytes) -> None:
    seconds = probe(long_speech).duration_s
    assert seconds is not None
    assert seconds > 10
    with pytest.raises(AudioError) as info:
        load(long_speech, max_seconds=5)
    assert info.value.reason == "too_long"
    assert "limit is 5 s" in str(info.value)
    assert load(long_speech, max_seconds=seconds + 1).size > 10 * SAMPLE_RATE


def test_too_long_without_a_header_duration_is_caught_while_decoding(long_speech: bytes) -> None:
    # Live webm has no duration to refuse on early: the decoder stops counting at the limit.
    live = encode(long_speech, "webm", "libopus", 48_000, options={"live": "1"})
    with pytest.raises(AudioError) as info:
        decode(live, max_seconds=5)
    assert info.value.reason == "too_long"


def test_normalise_golden_quiet_sine() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    quiet = (0.01 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # -43 dBFS RMS
    out = normalise(quiet)
    assert dbfs(out) == pytest.approx(TARGET_DBFS, abs=0.01)
    # Sine RMS = peak / sqrt(2): -20 dBFS RMS puts the peak at -17 dBFS, under the ceiling.
    assert float(np.max(np.abs(out))) == pytest.approx(10 ** (-17 / 20) * 1.0, rel=0.02)


def test_normalise_golden_peak_limited() -> None:
    # A click on top of quiet speech: reaching -20 dBFS RMS would clip the click.
    signal = np.full(SAMPLE_RATE, 0.001, dtype=np.float32)
    signal[100] = 0.5
    out = normalise(signal)
    assert float(np.max(np.abs(out))) == pytest.approx(10 ** (PEAK_DBFS / 20), rel=1e-5)
    assert dbfs(out) < TARGET_DBFS


def test_encode_wav_round_trips() -> None:
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    wav = encode_wav(tone)
    assert wav[:4] == b"RIFF"
    back = decode(wav, 60)
    assert back.size == tone.size
    assert np.max(np.abs(back - tone)) < 1e-3
    with pytest.raises(ValueError, match="mono 1-D"):
        encode_wav(np.zeros((2, 10), np.float32))


def test_audio_error_keeps_its_reason_through_pickle() -> None:
    error = pickle.loads(pickle.dumps(AudioError("too_long", "too long")))
    assert error.reason == "too_long"
    assert str(error) == "too long"
    with pytest.raises(ValueError, match="unknown audio error reason"):
        AudioError("loud", "x")  # type: ignore[arg-type]
