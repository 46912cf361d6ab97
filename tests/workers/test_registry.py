"""The backend registry: lazy imports, clear errors, and loading through the worker's runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contract.modelsfile import KNOWN_BACKENDS, ModelSpec, load_models_file
from devstack.fake_apis import FakeApiServer
from tests.workers.conftest import write_models
from workers import runtime
from workers.backends.gemini import GeminiBackend
from workers.backends.openai_audio import OpenAiAudioBackend
from workers.backends.openai_compatible import OpenAiCompatibleBackend
from workers.backends.registry import BACKENDS, backend_class, build_backend, select_models


def test_registry_covers_every_known_backend() -> None:
    assert set(BACKENDS) == set(KNOWN_BACKENDS)
    assert BACKENDS["asr_pipeline"] == "workers.backends.asr_pipeline:AsrPipelineBackend"
    assert BACKENDS["hf_audio_lm"] == "workers.backends.hf_audio_lm:HfAudioLmBackend"
    assert backend_class("openai_audio") is OpenAiAudioBackend
    assert backend_class("gemini") is GeminiBackend
    assert backend_class("openai_compatible") is OpenAiCompatibleBackend


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown backend 'whisper'; known backends: asr_pipeline"):
        backend_class("whisper")


def test_api_backends_and_bot_side_modules_never_import_torch() -> None:
    code = (
        "import sys\n"
        "from workers.backends.registry import backend_class\n"
        "import contract.audio, contract.queueing, workers.jobs, workers.worker\n"
        "for name in ('openai_audio', 'gemini', 'openai_compatible'):\n"
        "    backend_class(name)\n"
        "heavy = [m for m in ('torch', 'transformers', 'faster_whisper') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_select_models_names_unknown_ids(tmp_path: Path) -> None:
    path = write_models(
        tmp_path / "m.toml",
        '[models.a]\nbackend = "gemini"\n[models.a.settings]\nmodel = "g"\n'
        '[models.b]\nbackend = "gemini"\n[models.b.settings]\nmodel = "g"\n',
    )
    models = load_models_file(path)
    assert [s.id for s in select_models(models, None)] == ["a", "b"]
    assert [s.id for s in select_models(models, ["b", "b"])] == ["b"]
    with pytest.raises(ValueError, match=r"unknown model id\(s\) 'c' in .*; known: a, b"):
        select_models(models, ["a", "c"])


def test_build_backend_validates_settings() -> None:
    spec = ModelSpec(id="x", display_name="X", backend="gemini", settings={"modle": "g"})
    with pytest.raises(ValueError, match=r"model 'x' \(gemini\): unknown setting\(s\) \['modle'\]"):
        build_backend(spec)


def test_load_runtime_loads_and_warms_up(
    tmp_path: Path, fake_api: FakeApiServer, api_key_env: str
) -> None:
    path = write_models(
        tmp_path / "m.toml",
        f"""
[models.gpt]
display_name = "GPT-4o audio"
backend = "openai_audio"
[models.gpt.settings]
model = "gpt-4o-audio-preview"
base_url = "{fake_api.openai_url}"

[models.gem]
backend = "gemini"
[models.gem.settings]
model = "gemini-2.5-flash"
base_url = "{fake_api.gemini_url}"
""",
    )
    loaded = runtime.load_runtime(load_models_file(path), ["gem", "gpt"])
    try:
        assert list(loaded.models) == ["gem", "gpt"]
        assert loaded.get("gpt").load_s >= 0
        # Warm-up checked each model against its server.
        paths = [r["path"] for r in fake_api.requests]
        assert "/v1/models" in paths
        assert "/v1beta/models/gemini-2.5-flash" in paths
        with pytest.raises(LookupError, match="does not serve model 'other'; it serves: gem, gpt"):
            loaded.get("other")
    finally:
        loaded.close()


def test_current_runtime_outside_a_worker_is_a_clear_error() -> None:
    runtime.install(None)
    with pytest.raises(RuntimeError, match="python -m workers"):
        runtime.current()


@pytest.mark.slow
def test_local_backend_paths_resolve() -> None:
    # Imports torch and transformers: the point is that the dotted paths are right.
    for name in ("asr_pipeline", "hf_audio_lm"):
        cls = backend_class(name)
        assert cls.__name__ == BACKENDS[name].rpartition(":")[2]
        for method in ("load", "warmup", "answer"):
            assert callable(getattr(cls, method))
