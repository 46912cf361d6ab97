"""Fixtures for the local backends: real synthesized speech and models loaded once per session.

Local `local:` models build into the normal cache dir (PARLEY_CACHE_DIR or
~/.cache/parley/models) on first use, so after one test run the demo models file works offline.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from contract.modelsfile import ModelsFile, load_models_file
from workers.backends.asr_pipeline import AsrPipelineBackend
from workers.backends.hf_audio_lm import HfAudioLmBackend

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODELS = ROOT / "examples" / "models.demo.toml"
STUDY_MODELS = ROOT / "examples" / "models.study.toml"
SPOKEN = "Hello, what is the weather like today in London?"


def decode_to_16k_mono(path: Path) -> np.ndarray:
    """Any file PyAV reads -> 16 kHz mono float32 in [-1, 1]."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    return np.concatenate(chunks).astype(np.float32)


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Real synthesized speech (espeak-ng) of SPOKEN, 16 kHz mono float32."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed; run `make system-deps`")
    wav = tmp_path_factory.mktemp("speech") / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SPOKEN], check=True, capture_output=True)
    return decode_to_16k_mono(wav)


@pytest.fixture(scope="session")
def demo_models() -> ModelsFile:
    return load_models_file(DEMO_MODELS)


@pytest.fixture(scope="session")
def demo_pipeline(demo_models: ModelsFile) -> AsrPipelineBackend:
    """The demo's `demo-pipeline`: real Whisper tiny.en -> real SmolLM2-135M, loaded once."""
    backend = AsrPipelineBackend(demo_models.get("demo-pipeline"))
    backend.load()
    return backend


@pytest.fixture(scope="session")
def demo_qwen2_audio(demo_models: ModelsFile) -> HfAudioLmBackend:
    backend = HfAudioLmBackend(demo_models.get("demo-qwen2-audio"))
    backend.load()
    return backend
