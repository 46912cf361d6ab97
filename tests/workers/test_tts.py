"""The study's voice ([tts]) and spoken replies from the job: against the local fake OpenAI server
(chat completions and /audio/speech) and the real espeak-ng, with a real Redis."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import redis

from contract.audio import SAMPLE_RATE, decode, probe
from contract.keys import audio_key, reply_audio_key
from contract.modelsfile import ModelsFileError, TtsSpec, load_models_file
from contract.protocol import JobRequest
from devstack.fake_apis import FakeApiServer, voice_pitch
from tests.workers.conftest import write_models
from workers import jobs
from workers.backends.base import Answer, BackendError
from workers.runtime import Runtime, load_runtime
from workers.tts import EspeakNg, OpenAiSpeech, load_voice, speak, speakable, spoken_reply

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def tts_table(base_url: str, **extra: str) -> str:
    lines = [
        "[tts]",
        'backend = "openai_speech"',
        f'base_url = "{base_url}"',
        'model = "gpt-4o-mini-tts"',
        'voice = "alloy"',
        *(f'{k} = "{v}"' for k, v in extra.items()),
    ]
    return "\n".join(lines) + "\n"


def chat_models(base_url: str) -> str:
    return "".join(
        f'[models.{mid}]\nbackend = "openai_audio"\n[models.{mid}.settings]\n'
        f'model = "gpt-4o-audio-preview"\nbase_url = "{base_url}"\nstream = false\n'
        for mid in ("gpt-x", "gpt-y")
    )


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


# ------------------------------------------------------------------ the models file


def test_models_file_reads_the_tts_table(tmp_path: Path) -> None:
    path = write_models(
        tmp_path / "m.toml",
        tts_table("http://127.0.0.1:1/v1", format="wav") + chat_models("http://127.0.0.1:1/v1"),
    )
    models = load_models_file(path)
    assert models.tts == TtsSpec(
        "openai_speech",
        {
            "base_url": "http://127.0.0.1:1/v1",
            "model": "gpt-4o-mini-tts",
            "voice": "alloy",
            "format": "wav",
        },
    )
    assert models.tts.voice == "alloy"
    no_tts = write_models(tmp_path / "n.toml", chat_models("http://127.0.0.1:1/v1"))
    assert load_models_file(no_tts).tts is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[tts]\nbackend = "festival"\n', "unknown backend 'festival'"),
        ('[tts]\nbackend = "openai_speech"\nmodel = "m"\n', "needs voice"),
        ('[tts]\nbackend = "espeak_ng"\nvoise = "en"\n', "unknown key(s) ['voise']"),
        ('tts = "espeak"\n', "[tts] must be a table"),
    ],
)
def test_models_file_refuses_a_bad_tts_table(tmp_path: Path, table: str, message: str) -> None:
    path = write_models(tmp_path / "m.toml", table + chat_models("http://127.0.0.1:1/v1"))
    with pytest.raises(ModelsFileError) as caught:
        load_models_file(path)
    assert message in str(caught.value)


# ------------------------------------------------------------------ the voices


def test_speakable_drops_markup_and_link_targets() -> None:
    assert speakable("**Paris** is the [capital](https://x.y/z).\n\n# Done") == (
        "Paris is the capital. Done"
    )


def test_openai_speech_speaks_through_the_api_with_its_voice_and_no_tags(
    fake_api: FakeApiServer, api_key_env: str
) -> None:
    voice = OpenAiSpeech(
        TtsSpec(
            "openai_speech",
            {"base_url": fake_api.openai_url, "model": "gpt-4o-mini-tts", "voice": "alloy"},
        )
    )
    voice.load()
    try:
        spoken = speak(voice, "The capital of **France** is Paris.")
        again = speak(voice, "Another reply, with other words in it.")
    finally:
        voice.close()
    assert fake_api.speech_requests[0] == {
        "model": "gpt-4o-mini-tts",
        "voice": "alloy",
        "input": "The capital of France is Paris.",
        "response_format": "opus",
    }
    assert {r["voice"] for r in fake_api.speech_requests} == {"alloy"}
    info = probe(spoken.data)
    assert (info.container, info.codec, info.channels) == ("ogg", "opus", 1)
    # One 0.25 s beat per word (6 words), within the codec's padding.
    assert spoken.seconds == pytest.approx(1.5, abs=0.1)
    assert spoken.format == "ogg"
    # The server's title tag ("voice alloy") is gone; the voice is the tone.
    assert tags(spoken.data) == {}
    assert dominant_hz(spoken.data) == pytest.approx(voice_pitch("alloy"), abs=5)
    assert dominant_hz(again.data) == pytest.approx(voice_pitch("alloy"), abs=5)


def test_openai_speech_errors_name_the_tts_and_never_the_key(
    fake_api: FakeApiServer, api_key_env: str
) -> None:
    voice = OpenAiSpeech(
        TtsSpec(
            "openai_speech",
            {
                "base_url": fake_api.openai_url,
                "model": "no-such-tts",
                "voice": "alloy",
                "retries": 0,
            },
        )
    )
    voice.load()
    try:
        with pytest.raises(BackendError) as caught:
            voice.warmup()
    finally:
        voice.close()
    assert "[tts]" in str(caught.value)
    assert "no-such-tts" in str(caught.value)
    assert api_key_env not in str(caught.value)
    assert not caught.value.transient


def test_openai_speech_refuses_headerless_pcm() -> None:
    with pytest.raises(ValueError, match="headerless"):
        OpenAiSpeech(TtsSpec("openai_speech", {"model": "m", "voice": "v", "format": "pcm"}))


def test_espeak_ng_speaks_locally() -> None:
    voice, _ = load_voice(TtsSpec("espeak_ng", {"voice": "en-us"}))
    spoken = speak(voice, "Hello, the capital of France is Paris.")
    assert isinstance(voice, EspeakNg)
    assert probe(spoken.data).codec == "opus"
    assert 1.0 < spoken.seconds < 6.0
    assert tags(spoken.data) == {}


def test_a_reply_that_is_not_audio_fails_as_the_backend_not_the_participant() -> None:
    with pytest.raises(BackendError, match="spoken reply cannot be decoded"):
        spoken_reply(b"not audio at all")


# ------------------------------------------------------------------ the job


def test_job_speaks_both_sides_with_the_study_voice_into_redis(
    tmp_path: Path,
    fake_api: FakeApiServer,
    api_key_env: str,
    redis_url: str,
    speech_clips: dict[str, bytes],
) -> None:
    path = write_models(
        tmp_path / "m.toml", tts_table(fake_api.openai_url) + chat_models(fake_api.openai_url)
    )
    loaded = load_runtime(load_models_file(path), None)
    conn = redis.Redis.from_url(redis_url)
    conn.set(audio_key("b1"), speech_clips["ogg"])
    try:
        results = [
            jobs.run(
                JobRequest(
                    battle_id="b1",
                    side=side,  # type: ignore[arg-type]
                    model_id=model,
                    audio_key=audio_key("b1"),
                    audio_format="ogg",
                    max_audio_seconds=60,
                    speak=True,
                ),
                loaded,
                conn,
            )
            for side, model in (("a", "gpt-x"), ("b", "gpt-y"))
        ]
        text_only = jobs.run(
            JobRequest(
                battle_id="b1",
                side="a",
                model_id="gpt-x",
                audio_key=audio_key("b1"),
                audio_format="ogg",
                max_audio_seconds=60,
            ),
            loaded,
            conn,
        )
    finally:
        loaded.close()
    for result in results:
        key = reply_audio_key("b1", result.side)
        assert result.audio_key == key
        assert result.audio_format == "ogg"
        data = conn.get(key)
        assert data is not None
        assert 0 < conn.ttl(key) <= 24 * 3600
        assert probe(data).duration_s == pytest.approx(result.audio_seconds, abs=0.1)
        assert dominant_hz(data) == pytest.approx(voice_pitch("alloy"), abs=5)
        assert result.reply
        assert "speak" in result.timings
        assert "gpt" not in str(tags(data))
    # Warmup said "Ready." once; each reply was spoken once, by the one voice.
    assert [r["voice"] for r in fake_api.speech_requests] == ["alloy"] * 3
    assert text_only.audio_key is None
    assert "audio_key" not in text_only.to_fields()["data"]
    conn.delete(audio_key("b1"), reply_audio_key("b1", "a"), reply_audio_key("b1", "b"))


def test_a_model_that_speaks_for_itself_is_heard_in_its_own_audio(tmp_path: Path) -> None:
    """No [tts] needed: the model's own speech (any container) is cleaned and kept."""
    from devstack.fake_apis import fake_speech

    own, _ = fake_speech("one two three four", "verse", "wav")
    models = write_models(tmp_path / "m.toml", chat_models("http://127.0.0.1:1/v1"))
    loaded = Runtime(models_file=load_models_file(models))
    spoken = jobs.spoken_answer(Answer(reply="one two three four", audio=own), loaded)
    assert spoken.seconds == pytest.approx(1.0, abs=0.1)
    assert tags(spoken.data) == {}
    with pytest.raises(BackendError, match=r"has no \[tts\] table"):
        jobs.spoken_answer(Answer(reply="text only"), loaded)
