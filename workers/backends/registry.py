"""Backend name -> class, imported lazily.

The local backends (asr_pipeline, hf_audio_lm) import torch and transformers at module level; the
API backends must not pay for that, and a bot host has no torch at all. So the registry holds
dotted paths and imports a backend's module only when a model of that backend is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from contract.modelsfile import KNOWN_BACKENDS, ModelsFile, ModelSpec
from workers.backends.base import Backend

BACKENDS: dict[str, str] = {
    "asr_pipeline": "workers.backends.asr_pipeline:AsrPipelineBackend",
    "hf_audio_lm": "workers.backends.hf_audio_lm:HfAudioLmBackend",
    "openai_audio": "workers.backends.openai_audio:OpenAiAudioBackend",
    "gemini": "workers.backends.gemini:GeminiBackend",
    "openai_compatible": "workers.backends.openai_compatible:OpenAiCompatibleBackend",
}
# The models file validates backend names against the same list; keep them in step.
if set(BACKENDS) != set(KNOWN_BACKENDS):
    raise RuntimeError(
        f"registry {sorted(BACKENDS)} and modelsfile.KNOWN_BACKENDS {sorted(KNOWN_BACKENDS)} differ"
    )


def backend_class(name: str) -> type[Backend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    cls: type[Backend] = getattr(module, class_name)
    return cls


def build_backend(spec: ModelSpec) -> Backend:
    """Construct (not load) the backend; its __init__ validates the model's settings."""
    return backend_class(spec.backend)(spec)


def select_models(models: ModelsFile, ids: Iterable[str] | None) -> list[ModelSpec]:
    """The specs for `ids` (all models when None); unknown ids fail listing the known ones."""
    if ids is None:
        return list(models.models.values())
    wanted = [i.strip() for i in ids if i.strip()]
    if not wanted:
        raise ValueError(f"no model ids given; known: {', '.join(models.models)}")
    unknown = [i for i in wanted if i not in models.models]
    if unknown:
        raise ValueError(
            f"unknown model id(s) {', '.join(map(repr, unknown))} in {models.path}; "
            f"known: {', '.join(models.models)}"
        )
    return [models.models[i] for i in dict.fromkeys(wanted)]
