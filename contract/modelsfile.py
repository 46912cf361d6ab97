"""The models file (TOML): which models a study can use and how each is served.

Light on purpose (no torch): the bot reads it for the roster and the names revealed after a vote.

    [models.demo-pipeline]
    display_name = "Whisper tiny.en → SmolLM"
    backend = "asr_pipeline"
    static_name = "Whisper + SmolLM"   # optional: its row in a static benchmark table
    [models.demo-pipeline.settings]
    asr_model = "..."

Backend settings are validated by the backend itself when a worker loads it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KNOWN_BACKENDS = ("asr_pipeline", "hf_audio_lm", "openai_audio", "gemini", "openai_compatible")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ModelsFileError(ValueError):
    """The models file is missing, unreadable or invalid; the message says where."""


@dataclass(frozen=True)
class ModelSpec:
    id: str
    display_name: str
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    # The model's name in static benchmark tables (the `model` column of SCORES.csv), exported
    # per battle so `python -m analysis correlate` matches it without hand-made renaming.
    static_name: str | None = None


@dataclass(frozen=True)
class ModelsFile:
    path: Path
    models: dict[str, ModelSpec]

    def get(self, model_id: str) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            raise ModelsFileError(
                f"unknown model id {model_id!r} in {self.path}; known: {', '.join(self.models)}"
            ) from None

    def display_name(self, model_id: str) -> str:
        return self.get(model_id).display_name

    def static_name(self, model_id: str) -> str | None:
        """The model's row in static benchmark tables; None for an unknown id or none set."""
        spec = self.models.get(model_id)
        return None if spec is None else spec.static_name


def load_models_file(path: Path | str) -> ModelsFile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelsFileError(f"models file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelsFileError(f"models file {path} is not valid TOML: {exc}") from None
    table = data.get("models")
    if not isinstance(table, dict) or not table:
        raise ModelsFileError(f"models file {path} has no [models.<id>] tables")
    models: dict[str, ModelSpec] = {}
    for model_id, entry in table.items():
        where = f"{path}: [models.{model_id}]"
        if not _ID.match(model_id):
            raise ModelsFileError(
                f"{where}: model id must be lowercase letters, digits, '.', '_' or '-' "
                f"(at most 64), got {model_id!r}"
            )
        if not isinstance(entry, dict):
            raise ModelsFileError(f"{where} must be a table")
        backend = entry.get("backend")
        if backend not in KNOWN_BACKENDS:
            raise ModelsFileError(
                f"{where}: unknown backend {backend!r}; known backends: {', '.join(KNOWN_BACKENDS)}"
            )
        unknown = set(entry) - {"display_name", "backend", "settings", "static_name"}
        if unknown:
            raise ModelsFileError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: display_name, backend, "
                "static_name, settings"
            )
        static_name = entry.get("static_name")
        if static_name is not None and (not isinstance(static_name, str) or not static_name):
            raise ModelsFileError(
                f"{where}: static_name must be a non-empty string, got {static_name!r}"
            )
        settings = entry.get("settings", {})
        if not isinstance(settings, dict):
            raise ModelsFileError(f"{where}.settings must be a table")
        models[model_id] = ModelSpec(
            id=model_id,
            display_name=str(entry.get("display_name", model_id)),
            backend=backend,
            settings=dict(settings),
            static_name=static_name,
        )
    return ModelsFile(path=path, models=models)
