"""The ASR -> LLM pipeline on CPU: real Whisper tiny.en weights, tiny local LLMs, the fallback."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from contract.modelsfile import ModelsFile, ModelSpec
from workers.backends.asr_pipeline import AsrPipelineBackend
from workers.backends.base import BackendError

pytestmark = pytest.mark.slow


def assert_growing(partials: list[str]) -> None:
    assert partials, "the partial callback was never called"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(partials))
    assert len(partials[-1]) > len(partials[0]) or len(partials) == 1


def test_real_tiny_en_transcribes_synthesized_speech(
    demo_pipeline: AsrPipelineBackend, speech: np.ndarray
) -> None:
    assert demo_pipeline.engine == "faster_whisper"
    words = demo_pipeline.transcribe(speech).lower()
    for word in ("hello", "weather", "today", "london"):
        assert word in words, f"{word!r} missing from transcript {words!r}"


def test_pipeline_answers_with_transcript_timings_and_partials(
    demo_pipeline: AsrPipelineBackend, speech: np.ndarray
) -> None:
    partials: list[str] = []
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    answer = demo_pipeline.answer(speech, history, partials.append)
    assert answer.reply
    assert "weather" in (answer.transcript or "").lower()
    for key in ("total", "asr", "first_token", "generate", "tokens"):
        assert key in answer.timings, key
    assert 0 < answer.timings["asr"] < answer.timings["first_token"] <= answer.timings["total"]
    assert 0 < answer.timings["tokens"] <= demo_pipeline.options.max_new_tokens
    assert_growing(partials)


def test_silence_still_gets_an_answer(demo_pipeline: AsrPipelineBackend) -> None:
    answer = demo_pipeline.answer(np.zeros(16_000, dtype=np.float32), [])
    assert answer.transcript == ""
    assert answer.timings["total"] > 0


def test_every_demo_model_answers_offline(demo_models: ModelsFile, speech: np.ndarray) -> None:
    from workers.backends.registry import build_backend

    assert len(demo_models.models) >= 3
    for spec in demo_models.models.values():
        backend = build_backend(spec)
        backend.load()
        answer = backend.answer(speech, [])
        assert answer.reply, spec.id
        # Tiny models never emit control bytes or special tokens: gibberish, but printable.
        assert answer.reply.isprintable(), (spec.id, answer.reply)
        assert answer.timings["total"] > 0, spec.id


def pipeline_spec(**settings: object) -> ModelSpec:
    base = {
        "llm_model": "local:tiny-qwen2-chat",
        "max_new_tokens": 8,
        "temperature": 0.5,
        "asr_max_tokens": 16,  # random Whisper weights never stop on their own
    }
    return ModelSpec("fallback", "Fallback", "asr_pipeline", {**base, **settings})


def test_transformers_engine_runs_the_hf_whisper(speech: np.ndarray) -> None:
    backend = AsrPipelineBackend(
        pipeline_spec(asr_model="local:tiny-whisper-hf", asr_engine="transformers")
    )
    backend.load()
    assert backend.engine == "transformers"
    partials: list[str] = []
    answer = backend.answer(speech, [], partials.append)
    assert answer.reply
    assert answer.transcript is not None
    assert {"total", "asr", "first_token"} <= set(answer.timings)
    assert_growing(partials)


def test_ctranslate2_load_error_falls_back_with_a_warning(
    speech: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    # A transformers-format dir is no CTranslate2 model: CTranslate2 itself refuses to load it.
    backend = AsrPipelineBackend(
        pipeline_spec(asr_model="local:tiny-whisper-hf", asr_hf_model="local:tiny-whisper-hf")
    )
    with caplog.at_level(logging.WARNING, logger="workers.backends.asr_pipeline"):
        backend.load()
    assert backend.engine == "transformers"
    assert "falling back to transformers Whisper" in caplog.text
    assert backend.answer(speech, []).reply


def test_ctranslate2_load_error_without_a_fallback_model_is_loud() -> None:
    backend = AsrPipelineBackend(pipeline_spec(asr_model="local:tiny-whisper-hf"))
    with pytest.raises(BackendError, match="set asr_hf_model"):
        backend.load()


def test_random_tiny_whisper_runs_on_faster_whisper(speech: np.ndarray) -> None:
    backend = AsrPipelineBackend(pipeline_spec(asr_model="local:tiny-whisper-ct2", vad=False))
    backend.load()
    assert backend.engine == "faster_whisper"
    assert backend.answer(speech, []).reply


def test_a_bad_asr_reference_is_a_config_error_not_a_fallback() -> None:
    from workers.localmodels import LocalModelError

    backend = AsrPipelineBackend(
        pipeline_spec(
            asr_model="package:no_such_package_xyz/model", asr_hf_model="local:tiny-whisper-hf"
        )
    )
    with pytest.raises(LocalModelError, match="no_such_package_xyz"):
        backend.load()
