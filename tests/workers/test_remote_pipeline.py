"""The ASR pipeline with its stages on an OpenAI-compatible server (vLLM's API), against the
local fake (devstack/fake_apis.py): text chat completions for the LLM stage,
`/v1/audio/transcriptions` for the ASR stage."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from contract.modelsfile import ModelSpec
from devstack.fake_apis import Behaviour, FakeApiServer, wav_seconds
from workers.backends.asr_pipeline import AsrPipelineBackend
from workers.backends.base import BackendError

LLM = "meta-llama/Meta-Llama-3-8B-Instruct"
WHISPER = "openai/whisper-large-v3-turbo"
KEY = "sk-vllm-test-key-456"


@pytest.fixture
def vllm_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    server = FakeApiServer(api_key=KEY, models=(LLM, WHISPER)).start()
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    yield server
    server.stop()


def spec(base_url: str, **settings: object) -> ModelSpec:
    return ModelSpec(
        id="whisper-llama-vllm",
        backend="asr_pipeline",
        display_name="Whisper → Llama (vLLM)",
        settings={
            "asr_model": WHISPER,
            "asr_base_url": base_url,
            "asr_api_key_env": "VLLM_API_KEY",
            "llm_model": LLM,
            "llm_base_url": base_url,
            "llm_api_key_env": "VLLM_API_KEY",
            "language": "en",
            "system_prompt": "Be brief.",
            "max_new_tokens": 64,
            "retries": 1,
            "backoff_s": 0.0,
            **settings,
        },
    )


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(16_000 * seconds)) / 16_000
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_both_stages_on_the_server(vllm_fake: FakeApiServer) -> None:
    backend = AsrPipelineBackend(spec(vllm_fake.openai_url))
    backend.load()
    assert backend.engine == "remote"
    backend.warmup()
    vllm_fake.requests.clear()
    partials: list[str] = []
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    answer = backend.answer(tone(2.0), history, partials.append)
    transcript = FakeApiServer.transcript_for(2.0)
    assert answer.transcript == transcript
    assert answer.reply == FakeApiServer.reply_to_text(transcript, 2)
    assert partials
    assert partials[-1].strip() == answer.reply
    for key in ("total", "asr", "generate", "first_token"):
        assert key in answer.timings, key
    assert answer.timings["asr"] < answer.timings["first_token"] <= answer.timings["total"]

    asr_request, llm_request = vllm_fake.requests
    assert asr_request["path"] == "/v1/audio/transcriptions"
    assert asr_request["headers"]["Authorization"] == f"Bearer {KEY}"
    form = asr_request["json"]
    assert (form["model"], form["language"], form["response_format"]) == (WHISPER, "en", "json")
    assert form["file"]["content_type"] == "audio/wav"
    assert wav_seconds(form["file"]["data"]) == pytest.approx(2.0)
    assert base64.b64decode(form["file"]["data"])[:4] == b"RIFF"

    assert llm_request["path"] == "/v1/chat/completions"
    body = llm_request["json"]
    assert body["model"] == LLM
    assert body["stream"] is True
    assert body["max_tokens"] == 64
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        *history,
        {"role": "user", "content": transcript},
    ]
    backend.close()


def test_not_streamed_and_text_only_llm_stage(vllm_fake: FakeApiServer) -> None:
    settings = spec(vllm_fake.openai_url, stream=False).settings
    backend = AsrPipelineBackend(
        ModelSpec(id="p", backend="asr_pipeline", display_name="p", settings=settings)
    )
    backend.load()
    answer = backend.answer(tone(1.0), [])
    assert answer.reply == FakeApiServer.reply_to_text(FakeApiServer.transcript_for(1.0), 0)
    assert "first_token" not in answer.timings
    assert answer.timings["tokens"] > 0
    backend.close()


def test_transient_errors_are_retried_and_permanent_ones_named(vllm_fake: FakeApiServer) -> None:
    backend = AsrPipelineBackend(spec(vllm_fake.openai_url))
    backend.load()
    vllm_fake.script = [Behaviour(503)]  # the transcription fails once, then works
    assert backend.answer(tone(1.0), []).reply
    vllm_fake.script = [Behaviour(503), Behaviour(503)]
    with pytest.raises(BackendError, match=r"ASR stage.*HTTP 503") as failed:
        backend.answer(tone(1.0), [])
    assert failed.value.transient
    vllm_fake.broken_models.add(LLM)
    with pytest.raises(BackendError, match=r"LLM stage.*HTTP 400: The model crashed") as broken:
        backend.answer(tone(1.0), [])
    assert not broken.value.transient
    backend.close()


def test_start_checks_the_servers_and_settings(
    vllm_fake: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = AsrPipelineBackend(spec(vllm_fake.openai_url, llm_model="not-served"))
    backend.load()
    with pytest.raises(BackendError, match=r"LLM stage.*does not serve 'not-served'"):
        backend.warmup()
    backend.close()
    with pytest.raises(ValueError, match="'llm_base_url' must be an http"):
        AsrPipelineBackend(spec(vllm_fake.openai_url, llm_base_url="gpu1:8000/v1"))
    monkeypatch.delenv("VLLM_API_KEY")
    with pytest.raises(ValueError, match="VLLM_API_KEY"):
        AsrPipelineBackend(spec(vllm_fake.openai_url)).load()


def test_concurrent_answers_share_the_server(vllm_fake: FakeApiServer) -> None:
    """Both stages remote: four jobs at once take one round of latency, not four."""
    vllm_fake.answer_delay_s = 0.5
    backend = AsrPipelineBackend(spec(vllm_fake.openai_url))
    backend.load()
    assert backend.concurrent
    replies: list[str] = []

    def job() -> None:
        replies.append(backend.answer(tone(1.0), []).reply)

    threads = [threading.Thread(target=job) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    elapsed = time.monotonic() - started
    assert len(replies) == 4
    # Two stages of 0.5 s each: ~1 s at once; one at a time would be 4 s.
    assert elapsed < 2.5, elapsed
    backend.close()
