"""API backends against local servers speaking the OpenAI and Gemini formats, errors included."""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.audio import load, probe
from contract.modelsfile import ModelSpec
from devstack.fake_apis import Behaviour, FakeApiServer, gemini_error, openai_error
from workers.backends.api_settings import api_key
from workers.backends.base import BackendError
from workers.backends.gemini import GeminiBackend
from workers.backends.http import RetryPolicy, error_detail, parse_retry_after
from workers.backends.openai_audio import OpenAiAudioBackend
from workers.backends.openai_compatible import OpenAiCompatibleBackend

Backend = OpenAiAudioBackend | OpenAiCompatibleBackend | GeminiBackend


@pytest.fixture(scope="module")
def audio(speech_clips: dict[str, bytes]) -> np.ndarray:
    return load(speech_clips["ogg"], 60)


def make(cls: type[Backend], *, base_url: str, model: str, **settings: Any) -> Backend:
    spec = ModelSpec(
        id="m1",
        display_name="M1",
        backend={
            OpenAiAudioBackend: "openai_audio",
            OpenAiCompatibleBackend: "openai_compatible",
            GeminiBackend: "gemini",
        }[cls],
        settings={"model": model, "base_url": base_url, "backoff_s": 0.0, **settings},
    )
    return cls(spec)


@pytest.fixture
def loaded() -> Iterator[list[Backend]]:
    """Closes every backend a test loads."""
    backends: list[Backend] = []
    yield backends
    for backend in backends:
        backend.close()


def ready(backends: list[Backend], backend: Backend) -> Backend:
    backend.load()
    backends.append(backend)
    return backend


def openai(fake: FakeApiServer, **settings: Any) -> OpenAiAudioBackend:
    return make(
        OpenAiAudioBackend, base_url=fake.openai_url, model="gpt-4o-audio-preview", **settings
    )  # type: ignore[return-value]


def gemini(fake: FakeApiServer, **settings: Any) -> GeminiBackend:
    return make(GeminiBackend, base_url=fake.gemini_url, model="gemini-2.5-flash", **settings)  # type: ignore[return-value]


# --- OpenAI ---------------------------------------------------------------------------------


def test_openai_streams_partials_and_sends_the_documented_request(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    backend = ready(loaded, openai(fake_api, system_prompt="Be brief.", language="French"))
    backend.warmup()
    partials: list[str] = []
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    answer = backend.answer(audio, history, partials.append)

    assert answer.reply == FakeApiServer.reply_for(audio.size / 16_000, 2)
    assert answer.transcript is None
    assert len(partials) == len(answer.reply.split())
    assert all(b.startswith(a) for a, b in itertools.pairwise(partials))
    assert partials[-1].strip() == answer.reply
    assert 0 < answer.timings["first_token"] <= answer.timings["total"]
    assert answer.timings["tokens"] == len(answer.reply.split())

    sent = fake_api.generation_requests()[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {api_key_env}"
    body = sent["json"]
    assert body["model"] == "gpt-4o-audio-preview"
    assert body["stream"] is True
    assert body["max_completion_tokens"] == 512
    assert body["messages"][0] == {"role": "system", "content": "Be brief. Reply in French."}
    assert body["messages"][1:3] == history
    part = body["messages"][3]["content"][0]
    assert part["type"] == "input_audio"
    assert part["input_audio"]["format"] == "wav"
    assert base64.b64decode(part["input_audio"]["data"])[:4] == b"RIFF"


def test_openai_without_streaming(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    backend = ready(loaded, openai(fake_api, stream=False, temperature=0.2))
    partials: list[str] = []
    answer = backend.answer(audio, [], partials.append)
    assert answer.reply == FakeApiServer.reply_for(audio.size / 16_000, 0)
    assert partials == []
    assert "first_token" not in answer.timings
    body = fake_api.generation_requests()[-1]["json"]
    assert "stream" not in body
    assert body["temperature"] == 0.2


@pytest.mark.parametrize("stream", [True, False])
def test_openai_audio_out_gives_the_models_own_speech(
    fake_api: FakeApiServer,
    api_key_env: str,
    audio: np.ndarray,
    loaded: list[Backend],
    stream: bool,
) -> None:
    """`audio_out`: the model speaks its reply (streamed pcm16 or a whole WAV); the text is the
    audio's transcript, the audio a playable WAV of the model's own voice."""
    backend = ready(loaded, openai(fake_api, stream=stream, audio_out=True, audio_voice="verse"))
    partials: list[str] = []
    answer = backend.answer(audio, [], partials.append)
    assert answer.reply == FakeApiServer.reply_for(audio.size / 16_000, 0)
    assert answer.audio is not None
    assert answer.audio[:4] == b"RIFF"
    info = probe(answer.audio)
    assert info.duration_s == pytest.approx(0.25 * len(answer.reply.split()), abs=0.05)
    if stream:
        assert partials
        assert partials[-1].strip() == answer.reply
    body = fake_api.audio_out_requests[-1]
    assert body["modalities"] == ["text", "audio"]
    assert body["audio"] == {"voice": "verse", "format": "pcm16" if stream else "wav"}


def test_openai_text_only_by_default(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    answer = ready(loaded, openai(fake_api)).answer(audio, [])
    assert answer.audio is None
    assert "modalities" not in fake_api.generation_requests()[-1]["json"]


def test_wrong_key_is_permanent_and_never_echoed(
    fake_api: FakeApiServer,
    monkeypatch: pytest.MonkeyPatch,
    audio: np.ndarray,
    loaded: list[Backend],
) -> None:
    secret = "sk-wrong-but-secret-987654"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    backend = ready(loaded, openai(fake_api))
    with pytest.raises(BackendError) as info:
        backend.warmup()
    assert not info.value.transient
    assert "HTTP 401" in str(info.value)
    assert "invalid_api_key" in str(info.value)
    with pytest.raises(BackendError) as info:
        backend.answer(audio, [])
    for text in (str(info.value), repr(info.value), repr(backend), repr(vars(backend)["_client"])):
        assert secret not in text
    assert len(fake_api.generation_requests()) == 1  # a 401 is not retried


def test_server_echoing_the_key_is_scrubbed(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [
        Behaviour(400, openai_error(f"bad request from key {api_key_env}", "invalid_request_error"))
    ]
    backend = ready(loaded, openai(fake_api))
    with pytest.raises(BackendError) as info:
        backend.answer(audio, [])
    assert api_key_env not in str(info.value)
    assert "bad request from key ***" in str(info.value)


def test_400_error_json_is_permanent_with_the_api_message(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [
        Behaviour(400, openai_error("Audio file might be corrupted", "invalid_request_error"))
    ]
    backend = ready(loaded, openai(fake_api, retries=3))
    with pytest.raises(BackendError) as info:
        backend.answer(audio, [])
    assert not info.value.transient
    assert "HTTP 400: Audio file might be corrupted (invalid_request_error)" in str(info.value)
    assert len(fake_api.generation_requests()) == 1


def test_429_is_retried_honouring_retry_after(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [
        Behaviour(429, openai_error("Rate limit reached", "requests"), {"Retry-After": "1"})
    ]
    backend = ready(loaded, openai(fake_api, retries=2))
    started = time.monotonic()
    answer = backend.answer(audio, [])
    assert time.monotonic() - started >= 1.0  # backoff_s is 0: only Retry-After can explain it
    assert answer.reply.startswith("I heard")
    assert len(fake_api.generation_requests()) == 2


def test_5xx_until_retries_run_out_is_transient(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [Behaviour(500), Behaviour(503), Behaviour(502)]
    backend = ready(loaded, openai(fake_api, retries=2))
    with pytest.raises(BackendError) as info:
        backend.answer(audio, [])
    assert info.value.transient
    assert "HTTP 502" in str(info.value)
    assert "gave up after 3 attempts" in str(info.value)


def test_slow_answer_times_out_as_transient(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [Behaviour(delay_s=2.0)]
    backend = ready(loaded, openai(fake_api, timeout_s=0.3, retries=0, stream=False))
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        backend.answer(audio, [])
    assert time.monotonic() - started < 1.5
    assert info.value.transient
    assert "no answer within 0.3 s" in str(info.value)
    # The client stays usable for the next job.
    assert backend.answer(audio, []).reply.startswith("I heard")


def test_slow_answer_then_success_within_retries(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [Behaviour(delay_s=1.0)]
    backend = ready(loaded, openai(fake_api, timeout_s=0.3, retries=1))
    assert backend.answer(audio, []).reply.startswith("I heard")


def test_error_event_mid_stream_is_permanent(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [Behaviour(stream_fault="error")]
    backend = ready(loaded, openai(fake_api, retries=2))
    partials: list[str] = []
    with pytest.raises(BackendError, match="error in stream: The server had an error") as info:
        backend.answer(audio, [], partials.append)
    assert not info.value.transient
    assert len(fake_api.generation_requests()) == 1


def test_stream_cut_after_text_is_transient_and_not_retried(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    fake_api.script = [Behaviour(stream_fault="cut")]
    backend = ready(loaded, openai(fake_api, retries=2))
    partials: list[str] = []
    with pytest.raises(BackendError, match="mid-stream") as info:
        backend.answer(audio, [], partials.append)
    assert info.value.transient
    assert partials == ["I "]  # the participant saw text: a silent retry would repeat it
    assert len(fake_api.generation_requests()) == 1


def test_missing_key_fails_at_load_naming_the_variable(
    fake_api: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARLEY_TEST_KEY", raising=False)
    backend = openai(fake_api, api_key_env="PARLEY_TEST_KEY")
    with pytest.raises(ValueError, match="PARLEY_TEST_KEY"):
        backend.load()


def test_key_in_dot_env_is_read_like_every_setting(
    fake_api: FakeApiServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    audio: np.ndarray,
    loaded: list[Backend],
) -> None:
    """A worker started directly (no honcho exporting .env) finds its key in .env."""
    monkeypatch.delenv("PARLEY_TEST_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"PARLEY_TEST_KEY={fake_api.api_key}\n", "utf-8")
    backend = ready(loaded, openai(fake_api, api_key_env="PARLEY_TEST_KEY"))
    assert backend.answer(audio, []).reply.startswith("I heard")
    # The environment wins over .env, as for every setting.
    monkeypatch.setenv("PARLEY_TEST_KEY", "sk-from-the-environment")
    assert api_key(backend.spec, "PARLEY_TEST_KEY") == "sk-from-the-environment"


def test_warmup_names_a_model_the_server_lacks(
    fake_api: FakeApiServer, api_key_env: str, loaded: list[Backend]
) -> None:
    backend = ready(
        loaded,
        make(OpenAiAudioBackend, base_url=fake_api.openai_url, model="gpt-9-audio"),  # type: ignore[arg-type]
    )
    with pytest.raises(BackendError, match=r"does not serve 'gpt-9-audio'; it serves: gpt-4o"):
        backend.warmup()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_new_token": 5}, r"unknown setting\(s\) \['max_new_token'\]"),
        ({"temperature": "hot"}, r"setting 'temperature' must be a number"),
        ({"temperature": 3.0}, r"setting 'temperature' must be a number >= 0.0 and <= 2.0"),
        ({"stream": "yes"}, r"setting 'stream' must be true or false"),
        ({"max_new_tokens": 0}, r"setting 'max_new_tokens' must be an integer >= 1"),
        ({"base_url": "ftp://x"}, r"setting 'base_url' must be an http\(s\) URL"),
    ],
)
def test_settings_are_validated_naming_model_and_key(
    settings: dict[str, Any], message: str
) -> None:
    for cls in (OpenAiAudioBackend, GeminiBackend):
        with pytest.raises(ValueError, match=message) as info:
            make(cls, **{"base_url": "http://127.0.0.1:1/v1", "model": "x", **settings})
        assert "model 'm1'" in str(info.value)


def test_model_setting_is_required() -> None:
    spec = ModelSpec(id="m2", display_name="M2", backend="openai_audio", settings={})
    with pytest.raises(ValueError, match=r"model 'm2'.*missing required setting 'model'"):
        OpenAiAudioBackend(spec)


# --- OpenAI-compatible ----------------------------------------------------------------------


@pytest.mark.parametrize("part", ["input_audio", "audio_url"])
def test_openai_compatible_audio_parts_without_a_key(
    audio: np.ndarray, loaded: list[Backend], part: str
) -> None:
    server = FakeApiServer(api_key=None, models=("Qwen/Qwen2-Audio-7B-Instruct",)).start()
    try:
        backend = ready(
            loaded,
            make(
                OpenAiCompatibleBackend,
                base_url=server.openai_url,
                model="Qwen/Qwen2-Audio-7B-Instruct",
                audio_part=part,
            ),
        )
        backend.warmup()
        partials: list[str] = []
        answer = backend.answer(audio, [], partials.append)
        assert answer.reply.startswith("I heard 2.4 seconds")
        assert partials
        sent = server.generation_requests()[-1]
        assert "Authorization" not in sent["headers"]
        assert sent["json"]["max_tokens"] == 512
        assert "stream_options" not in sent["json"]
        assert sent["json"]["messages"][-1]["content"][0]["type"] == part
    finally:
        server.stop()


def test_openai_compatible_needs_a_base_url() -> None:
    spec = ModelSpec(id="v", display_name="V", backend="openai_compatible", settings={"model": "x"})
    with pytest.raises(ValueError, match="missing required setting 'base_url'"):
        OpenAiCompatibleBackend(spec)
    with pytest.raises(ValueError, match="setting 'audio_part' must be one of"):
        make(OpenAiCompatibleBackend, base_url="http://h/v1", model="x", audio_part="mp3_url")


# --- Gemini ---------------------------------------------------------------------------------


def test_gemini_streams_with_inline_audio(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    backend = ready(loaded, gemini(fake_api, system_prompt="Be kind.", temperature=0.5))
    backend.warmup()
    partials: list[str] = []
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    answer = backend.answer(audio, history, partials.append)
    assert answer.reply == FakeApiServer.reply_for(audio.size / 16_000, 2)
    assert len(partials) == len(answer.reply.split())
    assert answer.timings["tokens"] == len(answer.reply.split())
    sent = fake_api.generation_requests()[-1]
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert sent["headers"]["x-goog-api-key"] == api_key_env
    assert "key=" not in sent["path"]
    body = sent["json"]
    assert body["system_instruction"] == {"parts": [{"text": "Be kind."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    inline = body["contents"][-1]["parts"][0]["inline_data"]
    assert inline["mime_type"] == "audio/wav"
    assert body["generationConfig"] == {"maxOutputTokens": 512, "temperature": 0.5}


def test_gemini_without_streaming(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    backend = ready(loaded, gemini(fake_api, stream=False))
    answer = backend.answer(audio, [])
    assert answer.reply == FakeApiServer.reply_for(audio.size / 16_000, 0)
    assert fake_api.generation_requests()[-1]["path"].endswith(":generateContent")


def test_gemini_errors(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    backend = ready(loaded, gemini(fake_api, retries=1))
    fake_api.script = [
        Behaviour(400, gemini_error(400, "Unsupported MIME type: audio/x", "INVALID_ARGUMENT"))
    ]
    with pytest.raises(
        BackendError, match=r"HTTP 400: Unsupported MIME type.*\(INVALID_ARGUMENT\)"
    ):
        backend.answer(audio, [])
    fake_api.script = [Behaviour(503), Behaviour(503)]
    with pytest.raises(BackendError) as info:
        backend.answer(audio, [])
    assert info.value.transient
    blocked = ready(
        loaded,
        make(GeminiBackend, base_url=fake_api.gemini_url, model="blocked-model", stream=False),
    )
    with pytest.raises(BackendError, match="blocked the prompt: SAFETY") as info:
        blocked.answer(audio, [])
    assert not info.value.transient


def test_gemini_429_honours_retry_info_in_the_body(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    quota = gemini_error(429, "Resource has been exhausted", "RESOURCE_EXHAUSTED")
    quota["error"]["details"] = [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
    ]
    fake_api.script = [Behaviour(429, quota)]
    backend = ready(loaded, gemini(fake_api, retries=1))
    started = time.monotonic()
    assert backend.answer(audio, []).reply.startswith("I heard")
    assert time.monotonic() - started >= 1.0


def test_openai_refusal_is_permanent_without_its_text(
    fake_api: FakeApiServer, api_key_env: str, audio: np.ndarray, loaded: list[Backend]
) -> None:
    refusal = {
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "I can't help."},
                "finish_reason": "stop",
            }
        ],
    }
    fake_api.script = [Behaviour(200, refusal)]
    backend = ready(loaded, openai(fake_api, stream=False))
    with pytest.raises(BackendError, match=r"refused to answer \(13 characters\)") as info:
        backend.answer(audio, [])
    assert not info.value.transient
    # The refusal is the model's text: error texts reach logs and RQ's records.
    assert "help" not in str(info.value)


@pytest.mark.parametrize("make_backend", [openai, gemini])
def test_a_broken_stream_event_is_named_never_quoted(
    fake_api: FakeApiServer,
    api_key_env: str,
    audio: np.ndarray,
    loaded: list[Backend],
    make_backend: Any,
) -> None:
    fake_api.script = [Behaviour(stream_fault="garbage")]
    backend = ready(loaded, make_backend(fake_api))
    with pytest.raises(BackendError, match="not JSON") as info:
        backend.answer(audio, [])
    assert not info.value.transient
    for word in ("secret", "Ada", "patient"):
        assert word not in str(info.value)


def test_gemini_wrong_key(
    fake_api: FakeApiServer, monkeypatch: pytest.MonkeyPatch, loaded: list[Backend]
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-not-the-right-one")
    backend = ready(loaded, gemini(fake_api))
    with pytest.raises(BackendError, match="API key not valid") as info:
        backend.warmup()
    assert "AIza-not-the-right-one" not in str(info.value)


# --- pure helpers ---------------------------------------------------------------------------


def test_parse_retry_after_golden() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == pytest.approx(30.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now=now) == 0.0


def test_retry_policy_delays_golden() -> None:
    policy = RetryPolicy(retries=5, backoff_s=0.5, max_backoff_s=3.0, max_retry_after_s=10.0)
    assert [policy.delay(a, None) for a in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay(0, "7") == 7.0
    assert policy.delay(0, "600") == 10.0
    with pytest.raises(ValueError, match="retries must be >= 0"):
        RetryPolicy(retries=-1)


def test_error_detail_golden() -> None:
    assert error_detail(b'{"error": {"message": "Bad", "type": "invalid_request_error"}}') == (
        "Bad (invalid_request_error)"
    )
    assert error_detail(
        b'{"error": {"code": 429, "message": "Slow down", "status": "RESOURCE_EXHAUSTED"}}'
    ) == ("Slow down (RESOURCE_EXHAUSTED)")
    assert error_detail(b"<html>502 Bad Gateway</html>") == "<html>502 Bad Gateway</html>"
