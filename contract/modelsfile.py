"""The models file (TOML): which models a study can use and how each is served.

Light on purpose (no torch): the bot reads it for the roster and the names revealed after a vote.

    [models.demo-pipeline]
    display_name = "Whisper tiny.en → SmolLM"
    backend = "asr_pipeline"
    static_name = "Whisper + SmolLM"   # optional: its row in a static benchmark table
    [models.demo-pipeline.settings]
    asr_model = "..."

    aliases = ["SmolLM", "Hugging Face"]   # optional: other words that name this model

    [identity]                              # optional, study-wide
    extra_words = ["Alibaba Cloud"]         # words that name no single model but give one away

Backend settings are validated by the backend itself when a worker loads it. `aliases` and
`[identity] extra_words` feed the identity guard (bot/core/identity.py): a reply naming a model
of the roster is masked before it is shown, and its battle flagged `identity_leak`.

The optional top-level `[tts]` table is the study's voice: in reply modes `speech` and `both` it
speaks every text reply (workers/tts.py), the same voice for both sides of a battle.

    [tts]
    backend = "openai_speech"       # POST {base_url}/audio/speech, OpenAI's API
    base_url = "https://api.openai.com/v1"
    model = "gpt-4o-mini-tts"
    voice = "alloy"
    api_key_env = "OPENAI_API_KEY"  # "" for a local server that takes no key
    format = "opus"                 # response_format: opus, mp3, wav, flac, aac, pcm

    [tts]
    backend = "espeak_ng"           # local: the espeak-ng program
    voice = "en-us"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KNOWN_BACKENDS = ("asr_pipeline", "hf_audio_lm", "openai_audio", "gemini", "openai_compatible")
# The `[tts]` backends and the settings each takes (workers/tts.py reads them).
TTS_BACKENDS: dict[str, frozenset[str]] = {
    "openai_speech": frozenset(
        {
            "base_url",
            "model",
            "voice",
            "api_key_env",
            "format",
            "speed",
            "instructions",
            "timeout_s",
            "retries",
            "backoff_s",
        }
    ),
    "espeak_ng": frozenset({"voice", "speed", "pitch"}),
}
TTS_REQUIRED: dict[str, tuple[str, ...]] = {"openai_speech": ("model", "voice")}
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ModelsFileError(ValueError):
    """The models file is missing, unreadable or invalid; the message says where."""


@dataclass(frozen=True)
class ModelSpec:
    id: str
    display_name: str
    backend: str
    settings: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # vendor and family words that name the model too
    # The model's name in static benchmark tables (the `model` column of SCORES.csv), exported
    # per battle so `python -m analysis correlate` matches it without hand-made renaming.
    static_name: str | None = None


@dataclass(frozen=True)
class TtsSpec:
    """The study's text-to-speech voice (the models file's `[tts]` table)."""

    backend: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def voice(self) -> str | None:
        voice = self.settings.get("voice")
        return None if voice is None else str(voice)


# Backends that can transcribe a clip on their own (`transcribe(audio) -> str`): the study's
# ASR for turn transcripts and voice reasons is one of these.
ASR_BACKENDS = ("asr_pipeline",)


@dataclass(frozen=True)
class ModelsFile:
    path: Path
    models: dict[str, ModelSpec]
    # The study's ASR: `[asr] model = "<id>"`, else the first model with an ASR backend; None
    # when the file has none (voice reasons are then refused, turns use the sides' own ASR).
    asr_model: str | None = None
    # Study-wide words the identity guard masks too (`[identity] extra_words`).
    identity_words: tuple[str, ...] = ()
    tts: TtsSpec | None = None

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
        unknown = set(entry) - {"display_name", "backend", "settings", "aliases", "static_name"}
        if unknown:
            raise ModelsFileError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: display_name, backend, "
                "static_name, settings, aliases"
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
            aliases=_words(entry.get("aliases", []), f"{where}.aliases"),
            static_name=static_name,
        )
    identity = data.get("identity", {})
    if not isinstance(identity, dict):
        raise ModelsFileError(f"{path}: [identity] must be a table")
    if set(identity) - {"extra_words"}:
        raise ModelsFileError(
            f"{path}: [identity] has unknown key(s) {sorted(set(identity) - {'extra_words'})}; "
            "allowed: extra_words"
        )
    extra = _words(identity.get("extra_words", []), f"{path}: [identity] extra_words")
    return ModelsFile(
        path=path,
        models=models,
        identity_words=extra,
        tts=_tts(path, data.get("tts")),
        asr_model=_asr_model(path, data, models),
    )


def _words(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise ModelsFileError(f"{where} must be a list of non-empty strings, got {value!r}")
    return tuple(w.strip() for w in value)


def _tts(path: Path, table: object) -> TtsSpec | None:
    if table is None:
        return None
    where = f"{path}: [tts]"
    if not isinstance(table, dict):
        raise ModelsFileError(f"{where} must be a table")
    backend = table.get("backend")
    if backend not in TTS_BACKENDS:
        raise ModelsFileError(
            f"{where}: unknown backend {backend!r}; known TTS backends: {', '.join(TTS_BACKENDS)}"
        )
    settings = {k: v for k, v in table.items() if k != "backend"}
    unknown = sorted(set(settings) - TTS_BACKENDS[backend])
    if unknown:
        raise ModelsFileError(
            f"{where}: unknown key(s) {unknown} for backend {backend!r}; allowed: "
            f"{', '.join(sorted(TTS_BACKENDS[backend]))}"
        )
    missing = [k for k in TTS_REQUIRED.get(backend, ()) if not settings.get(k)]
    if missing:
        raise ModelsFileError(f"{where}: backend {backend!r} needs {', '.join(missing)}")
    return TtsSpec(backend=backend, settings=settings)


def _asr_model(path: Path, data: dict[str, Any], models: dict[str, ModelSpec]) -> str | None:
    table = data.get("asr")
    if table is None:
        return next((m for m, spec in models.items() if spec.backend in ASR_BACKENDS), None)
    if not isinstance(table, dict) or set(table) != {"model"}:
        raise ModelsFileError(f'{path}: [asr] must hold exactly one key, model = "<model id>"')
    model_id = table["model"]
    spec = models.get(model_id) if isinstance(model_id, str) else None
    if spec is None or spec.backend not in ASR_BACKENDS:
        raise ModelsFileError(
            f"{path}: [asr] model {model_id!r} must be a model of this file with a backend that "
            f"transcribes ({', '.join(ASR_BACKENDS)})"
        )
    return spec.id
