"""Checks that need a CUDA device (marker `gpu`). Without one they are deselected, and the run
says how many and why (tests/conftest.py); scripts/gpu_check.sh runs them on a GPU host.

Figures measured here go to docs/models.md ("Measured on a GPU") with the device and versions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_gpu import bench_asr, bench_synthetic, ten_seconds
from contract.modelsfile import load_models_file
from workers.backends.asr_pipeline import AsrPipelineBackend

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

# The goal for the in-process fast path, 8B model, batch 1, bf16, one H100-class GPU.
GOAL_MS_PER_TOKEN = 11.0
# faster-whisper large-v3-turbo (CTranslate2): a hub id, or a local directory on a host
# without network.
WHISPER_TURBO = os.environ.get("PARLEY_WHISPER_TURBO", "deepdml/faster-whisper-large-v3-turbo-ct2")


def test_llama_8b_fast_path_meets_the_goal() -> None:
    row = bench_synthetic("llama-8b", device="cuda", compiled=True, new_tokens=256, runs=3)
    print(f"\nllama-8b static cache + compile: {row}")
    assert row["ms_per_token"] <= GOAL_MS_PER_TOKEN, row  # type: ignore[operator]


def test_llama_8b_eager_for_reference() -> None:
    row = bench_synthetic("llama-8b", device="cuda", compiled=False, new_tokens=64, runs=2)
    print(f"\nllama-8b static cache, eager: {row}")
    assert row["ms_per_token"] > 0  # type: ignore[operator]


def test_demo_pipeline_runs_compiled_on_cuda() -> None:
    """The CUDA fast path end to end: faster-whisper on CUDA (or the transformers fallback),
    the LLM with static cache and torch.compile (compile = auto is on for CUDA)."""
    spec = load_models_file(REPO / "examples" / "models.demo.toml").get("demo-pipeline")
    backend = AsrPipelineBackend(spec)
    assert backend.options.device.startswith("cuda")
    assert backend.options.compile
    backend.load()
    backend.warmup()
    rng = np.random.default_rng(0)
    answer = backend.answer((rng.standard_normal(32_000) * 0.01).astype(np.float32), [])
    assert answer.timings["tokens"] > 0
    assert backend._llm is not None
    assert backend._llm.compile, "fell back to eager"


def test_whisper_large_v3_turbo_on_a_10_s_clip(speech_10s: np.ndarray) -> None:
    row = bench_asr(WHISPER_TURBO, speech_10s, device="cuda", runs=5)
    print(f"\nwhisper large-v3-turbo, 10 s clip: {row}")
    assert row["transcribe_s"] < 10.0


@pytest.fixture(scope="module")
def speech_10s() -> np.ndarray:
    from benchmarks.bench_gpu import synthesized_speech

    return ten_seconds(synthesized_speech())
