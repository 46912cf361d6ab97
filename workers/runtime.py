"""The models this worker process has loaded, for the RQ job function to use.

RQ calls the job by its dotted path (`workers.jobs.answer`) with plain data, so the job cannot be
handed its backend; it finds it here. The worker installs one `Runtime` at start (after loading
and warming every model it serves) and the job reads it. This is the one piece of process-wide
state in the workers, and it is deliberate: the whole point is that model weights stay loaded
across jobs in this process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contract.modelsfile import ModelsFile
from workers.backends.base import Backend, BackendError, ModelGuard
from workers.backends.registry import build_backend, select_models
from workers.memory import check_models_fit
from workers.tts import Voice, load_voice

if TYPE_CHECKING:
    from workers.metrics import WorkerMetrics

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    backend: Backend
    load_s: float
    warmup_s: float
    guard: ModelGuard = field(default_factory=lambda: ModelGuard(concurrent=False))


@dataclass
class Runtime:
    models_file: ModelsFile
    models: dict[str, LoadedModel] = field(default_factory=dict)
    # Set by the worker when it exposes /metrics; jobs record into it.
    metrics: WorkerMetrics | None = None
    # The study's voice (the models file's [tts]), for reply modes speech/both.
    voice: Voice | None = None

    def require_voice(self) -> Voice:
        if self.voice is None:
            raise BackendError(
                f"a spoken reply was asked for, but {self.models_file.path} has no [tts] table "
                "to voice text replies with (see docs/models.md)"
            )
        return self.voice

    def get(self, model_id: str) -> LoadedModel:
        try:
            return self.models[model_id]
        except KeyError:
            raise LookupError(
                f"this worker does not serve model {model_id!r}; it serves: "
                f"{', '.join(self.models) or 'nothing'}"
            ) from None

    def close(self) -> None:
        for loaded in self.models.values():
            close = getattr(loaded.backend, "close", None)
            if close is not None:
                close()
        if self.voice is not None:
            self.voice.close()


def load_runtime(
    models_file: ModelsFile, ids: Iterable[str] | None, *, warmup: bool = True
) -> Runtime:
    """Build, validate, load and warm up each model; any failure stops the start loudly."""
    specs = select_models(models_file, ids)
    # Construct them all first: a typo in the last model's settings should not wait for the
    # first model's weights to load.
    backends = [build_backend(spec) for spec in specs]
    # Likewise, weights that cannot fit should be refused before minutes of loading, not after.
    check_models_fit(specs, backends)
    runtime = Runtime(models_file=models_file)
    for spec, backend in zip(specs, backends, strict=True):
        started = time.perf_counter()
        backend.load()
        loaded_at = time.perf_counter()
        if warmup:
            backend.warmup()
        done = time.perf_counter()
        runtime.models[spec.id] = LoadedModel(
            backend,
            loaded_at - started,
            done - loaded_at,
            ModelGuard(concurrent=bool(getattr(backend, "concurrent", False))),
        )
        log.info(
            "model %s (%s) loaded in %.2f s, warmed up in %.2f s",
            spec.id,
            spec.backend,
            loaded_at - started,
            done - loaded_at,
        )
    if models_file.tts is not None:
        runtime.voice, took = load_voice(models_file.tts, warmup=warmup)
        log.info("[tts] %s ready in %.2f s", runtime.voice, took)
    return runtime


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError(
            "no models are loaded in this process: jobs must run in a worker started with "
            "`python -m workers` (which loads the models before it takes jobs)"
        )
    return _current
