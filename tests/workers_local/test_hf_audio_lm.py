"""Audio-in transformers models on CPU with a tiny random Qwen2-Audio."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from contract.modelsfile import ModelSpec
from workers.backends.base import BackendError
from workers.backends.hf_audio_lm import HfAudioLmBackend

pytestmark = pytest.mark.slow


def test_qwen2_audio_answers_with_timings_and_growing_partials(
    demo_qwen2_audio: HfAudioLmBackend, speech: np.ndarray
) -> None:
    partials: list[str] = []
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    answer = demo_qwen2_audio.answer(speech, history, partials.append)
    assert answer.reply
    assert answer.transcript is None
    assert {"total", "first_token", "generate", "tokens"} <= set(answer.timings)
    assert 0 < answer.timings["first_token"] <= answer.timings["total"]
    assert partials
    assert all(b.startswith(a) for a, b in itertools.pairwise(partials))


def test_the_audio_reaches_the_model_as_audio_tokens(
    demo_qwen2_audio: HfAudioLmBackend, speech: np.ndarray
) -> None:
    adapter = demo_qwen2_audio._adapter
    inputs = adapter.inputs(speech, [])
    audio_id = adapter.model.config.audio_token_index
    n_audio = int((inputs["input_ids"] == audio_id).sum())
    # One audio token per 40 ms of speech (Whisper frames pooled 2x, then 2x again).
    seconds = len(speech) / 16_000
    assert abs(n_audio - seconds * 25) <= 2
    assert inputs["input_features"].shape[1] == 128


def test_processor_chat_adapter_builds_inputs_from_the_chat_template(speech: np.ndarray) -> None:
    backend = HfAudioLmBackend(
        ModelSpec(
            "chat",
            "Chat",
            "hf_audio_lm",
            {
                "model": "local:tiny-qwen2-audio",
                "adapter": "processor_chat",
                "model_class": "Qwen2AudioForConditionalGeneration",
                "instruction": "What did I say?",
                "max_new_tokens": 8,
            },
        )
    )
    backend.load()
    inputs = backend._adapter.inputs(speech, [])
    assert "input_features" in inputs
    audio_id = backend._adapter.model.config.audio_token_index
    assert int((inputs["input_ids"] == audio_id).sum()) > 0
    answer = backend.answer(speech, [])
    assert answer.reply
    assert answer.timings["tokens"] > 0


def test_remote_code_adapters_require_trust_remote_code() -> None:
    backend = HfAudioLmBackend(
        ModelSpec(
            "typhoon",
            "Typhoon",
            "hf_audio_lm",
            {"model": "local:tiny-qwen2-audio", "adapter": "typhoon_audio"},
        )
    )
    with pytest.raises(ValueError, match="set trust_remote_code = true"):
        backend.load()


def test_answer_before_load_is_refused(speech: np.ndarray) -> None:
    backend = HfAudioLmBackend(
        ModelSpec("q", "Q", "hf_audio_lm", {"model": "local:tiny-qwen2-audio"})
    )
    with pytest.raises(BackendError, match="before load"):
        backend.answer(speech, [])


def test_diva_requires_float16() -> None:
    settings = {"model": "local:tiny-qwen2-audio", "adapter": "diva", "dtype": "float32"}
    with pytest.raises(ValueError, match=r"model 'diva'.*setting 'dtype'.*float16"):
        HfAudioLmBackend(ModelSpec("diva", "DiVA", "hf_audio_lm", settings))
