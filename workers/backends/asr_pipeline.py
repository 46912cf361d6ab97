"""The cascade: Whisper transcribes the clip, then a transformers chat LLM answers the transcript.

ASR runs on faster-whisper (CTranslate2) with VAD on. When CTranslate2 cannot run on the requested
device (no CUDA build, cuBLAS / cuDNN missing: errors that often surface only at the first
transcription), the backend falls back to transformers' Whisper with a warning, using the
HF-format model in `asr_hf_model`. `asr_engine = "transformers"` selects that path outright.

Settings (defaults in brackets):
    asr_model          CTranslate2 Whisper: hub id / path / `package:` / `local:` (required)
    asr_hf_model       transformers Whisper for the fallback / transformers engine [asr_model]
    asr_engine         faster_whisper | transformers [faster_whisper]
    asr_device         auto | cpu | cuda [same as device]
    asr_compute_type   CTranslate2 compute type [auto: float16 on cuda, int8 on cpu]
    language           ISO code, or unset to detect [unset]
    vad                true | false [true]
    beam_size          [1]
    asr_max_tokens     most tokens Whisper writes per 30 s window [224]
    llm_model          the chat LLM: hub id / path / `local:`, or the served name with
                       llm_base_url (required)
    and the generation settings of workers.backends.textgen (device, dtype, system_prompt,
    max_new_tokens, temperature, top_p, static_cache, compile, max_cache_len, trust_remote_code).

Either stage can run on an OpenAI-compatible server instead (vLLM; workers/backends/
remote_stages.py), so a Whisper -> Llama pipeline needs no model in the worker at all:
    llm_base_url       e.g. http://gpu1:8001/v1: the LLM stage is `POST /chat/completions`
                       there, `llm_model` is the served model name [unset: in process]
    asr_base_url       e.g. http://gpu1:8002/v1: the ASR stage is `POST /audio/transcriptions`
                       there, `asr_model` is the served model name [unset: in process]
    llm_api_key_env, asr_api_key_env   variables holding the servers' keys (vLLM --api-key)
    stream [true], timeout_s [60], retries [2], backoff_s [0.5], check_on_start [true]: as for
                       the openai_compatible backend, for both servers
Remote stages take any number of jobs at once; a local stage takes one at a time (its own
lock), so with `--concurrency` one job's transcription overlaps another's generation.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from contract.modelsfile import ModelSpec
from workers.backends import textgen
from workers.backends.base import SAMPLE_RATE, Answer, BackendError, ModelGuard, PartialCallback
from workers.backends.http import RetryPolicy
from workers.backends.remote_stages import Endpoint, RemoteChat, RemoteTranscriber
from workers.localmodels import resolve_model_ref

log = logging.getLogger(__name__)

ASR_ENGINES = ("faster_whisper", "transformers")
SETTINGS: dict[str, Any] = {
    **textgen.GENERATION_DEFAULTS,
    "asr_model": None,
    "asr_hf_model": None,
    "asr_engine": "faster_whisper",
    "asr_device": None,
    "asr_compute_type": "auto",
    "language": None,
    "vad": True,
    "beam_size": 1,
    "asr_max_tokens": 224,
    "llm_model": None,
    "llm_base_url": None,
    "llm_api_key_env": None,
    "asr_base_url": None,
    "asr_api_key_env": None,
    "stream": True,
    "timeout_s": 60.0,
    "retries": 2,
    "backoff_s": 0.5,
    "check_on_start": True,
}
# What the LLM hears when ASR found no words (silence, noise): it still gets a turn to answer.
EMPTY_TRANSCRIPT = "(silence)"
# CTranslate2 reports a missing CUDA runtime, cuBLAS or cuDNN as RuntimeError / OSError /
# ValueError, at load or only at the first transcription.
CT2_ERRORS = (RuntimeError, OSError, ValueError)


class AsrPipelineBackend:
    # Several jobs may be inside answer() at once: each local stage lets one in at a time.
    concurrent = True

    def __init__(self, spec: ModelSpec) -> None:
        textgen.check_keys(spec, SETTINGS)
        self.spec = spec
        self.options = textgen.GenerationOptions.from_spec(spec)
        self.asr_model = textgen.get_str(spec, "asr_model", None)
        self.asr_hf_model = textgen.get_optional_str(spec, "asr_hf_model")
        self.asr_engine = textgen.get_str(
            spec, "asr_engine", SETTINGS["asr_engine"], choices=ASR_ENGINES
        )
        asr_device = textgen.get_optional_str(spec, "asr_device")
        self.asr_device = (
            self.options.device if asr_device is None else textgen.resolve_device(spec, asr_device)
        )
        self.asr_compute_type = textgen.get_str(spec, "asr_compute_type", "auto")
        self.language = textgen.get_optional_str(spec, "language")
        self.vad = textgen.get_bool(spec, "vad", SETTINGS["vad"])
        self.beam_size = textgen.get_int(spec, "beam_size", SETTINGS["beam_size"], low=1, high=16)
        self.asr_max_tokens = textgen.get_int(
            spec, "asr_max_tokens", SETTINGS["asr_max_tokens"], low=1, high=444
        )
        self.llm_model = textgen.get_str(spec, "llm_model", None)
        self._asr_remote: RemoteTranscriber | None = None
        self._llm_remote: RemoteChat | None = None
        asr_base_url = textgen.get_optional_str(spec, "asr_base_url")
        llm_base_url = textgen.get_optional_str(spec, "llm_base_url")
        if asr_base_url is not None:
            self._asr_remote = RemoteTranscriber(
                self._endpoint("ASR", asr_base_url, self.asr_model, "asr_api_key_env"),
                language=self.language,
            )
        if llm_base_url is not None:
            self._llm_remote = RemoteChat(
                self._endpoint("LLM", llm_base_url, self.llm_model, "llm_api_key_env"),
                max_tokens=self.options.max_new_tokens,
                temperature=self.options.temperature,
                top_p=self.options.top_p,
                stream=textgen.get_bool(spec, "stream", SETTINGS["stream"]),
            )
        self._asr_guard = ModelGuard(concurrent=False)
        self._llm_guard = ModelGuard(concurrent=False)
        self.engine: str | None = None  # the ASR engine actually in use after load()
        self._whisper: Any = None
        self._hf_whisper: Any = None
        self._hf_processor: Any = None
        self._llm: textgen.StreamingGenerator | None = None
        self._tokenizer: Any = None

    def _endpoint(self, stage: str, base_url: str, model: str, key_setting: str) -> Endpoint:
        spec = self.spec
        if not base_url.startswith(("http://", "https://")):
            raise textgen.setting_error(
                spec, f"{stage.lower()}_base_url", f"must be an http(s) URL, got {base_url!r}"
            )
        return Endpoint(
            label=f"asr_pipeline model {spec.id!r} ({stage} stage)",
            base_url=base_url,
            model=model,
            api_key_env=textgen.get_optional_str(spec, key_setting),
            timeout_s=textgen.get_float(
                spec, "timeout_s", SETTINGS["timeout_s"], low=0.001, high=3600
            ),
            policy=RetryPolicy(
                retries=textgen.get_int(spec, "retries", SETTINGS["retries"], low=0, high=10),
                backoff_s=textgen.get_float(
                    spec, "backoff_s", SETTINGS["backoff_s"], low=0.0, high=60.0
                ),
            ),
            check_on_start=textgen.get_bool(spec, "check_on_start", SETTINGS["check_on_start"]),
        )

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        if self._asr_remote is not None:
            self._asr_remote.load(self.spec)
            self.engine = "remote"
        elif self.asr_engine == "faster_whisper":
            # Resolved outside the try: a bad reference is a config error, not a CUDA problem.
            path, is_local = resolve_model_ref(self.asr_model)
            try:
                self._load_faster_whisper(path, is_local)
                self.engine = "faster_whisper"
            except CT2_ERRORS as exc:
                if self.asr_hf_model is None:
                    raise BackendError(
                        f"model {self.spec.id!r}: faster-whisper cannot run {self.asr_model!r} on "
                        f"{self.asr_device} ({exc}); set asr_hf_model to a transformers Whisper "
                        "to fall back to, or fix the CUDA libraries (see docs/models.md)"
                    ) from exc
                log.warning(
                    "model %r: faster-whisper cannot run on %s (%s); falling back to "
                    "transformers Whisper %r",
                    self.spec.id,
                    self.asr_device,
                    exc,
                    self.asr_hf_model,
                )
                self._whisper = None
        if self.engine is None:
            self._load_transformers_whisper(self.asr_hf_model or self.asr_model)
            self.engine = "transformers"
        if self._llm_remote is not None:
            self._llm_remote.load(self.spec)
        else:
            self._load_llm()

    def _load_faster_whisper(self, path: str, is_local: bool) -> None:
        from faster_whisper import WhisperModel

        device = "cuda" if self.asr_device.startswith("cuda") else "cpu"
        index = int(self.asr_device.split(":")[1]) if ":" in self.asr_device else 0
        compute_type = self.asr_compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        self._whisper = WhisperModel(
            path,
            device=device,
            device_index=index,
            compute_type=compute_type,
            local_files_only=is_local,
        )
        # Missing cuBLAS / cuDNN only shows at the first real decode: probe now, not mid-study.
        segments, _ = self._whisper.transcribe(
            np.zeros(SAMPLE_RATE, dtype=np.float32),
            beam_size=1,
            vad_filter=False,
            language=None,
            max_new_tokens=4,  # a few decoder steps are enough to touch cuBLAS / cuDNN
        )
        list(segments)

    def _load_transformers_whisper(self, ref: str) -> None:
        from transformers import AutoProcessor, WhisperForConditionalGeneration

        path, is_local = resolve_model_ref(ref)
        kwargs: dict[str, Any] = {"local_files_only": True} if is_local else {}
        dtype = self.options.dtype if self.asr_device == self.options.device else None
        self._hf_processor = AutoProcessor.from_pretrained(path, **kwargs)
        self._hf_whisper = WhisperForConditionalGeneration.from_pretrained(
            path, dtype=dtype, **kwargs
        ).to(self.asr_device)  # type: ignore[arg-type]  # PreTrainedModel.to is @functools.wraps'd; typeshed's _Wrapped does not bind self
        self._hf_whisper.eval()

    def _load_llm(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, kwargs = textgen.pretrained_kwargs(self.llm_model, self.options)
        self._tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        if self._tokenizer.chat_template is None:
            raise BackendError(
                f"model {self.spec.id!r}: llm_model {self.llm_model!r} has no chat template"
            )
        model = AutoModelForCausalLM.from_pretrained(path, dtype=self.options.dtype, **kwargs)
        model.to(self.options.device).eval()  # type: ignore[arg-type]  # @wraps'd .to: typeshed does not bind self (above)
        self._llm = textgen.StreamingGenerator(
            model, self._tokenizer, self.options, label=self.spec.id
        )

    def warmup(self) -> None:
        # The servers are up and serve the models (free), before one whole answer.
        for remote in (self._asr_remote, self._llm_remote):
            if remote is not None:
                remote.check()
        # One second of low noise: exercises ASR and one full generation (and compilation).
        rng = np.random.default_rng(0)
        self.answer((rng.standard_normal(SAMPLE_RATE) * 1e-3).astype(np.float32), [])

    # -- answering -------------------------------------------------------------------------

    def close(self) -> None:
        for remote in (self._asr_remote, self._llm_remote):
            if remote is not None:
                remote.close()

    def transcribe(self, audio: np.ndarray) -> str:
        if self.engine is None:
            raise BackendError(f"model {self.spec.id!r}: answer() before load()")
        if self._asr_remote is not None:
            return self._asr_remote.transcribe(audio)
        with self._asr_guard:
            return self._transcribe_local(audio)

    def _transcribe_local(self, audio: np.ndarray) -> str:
        if self.engine == "faster_whisper":
            segments, _info = self._whisper.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                vad_filter=self.vad,
                condition_on_previous_text=False,
                max_new_tokens=self.asr_max_tokens,
            )
            return " ".join(segment.text.strip() for segment in segments).strip()
        return self._transcribe_transformers(audio)

    def _transcribe_transformers(self, audio: np.ndarray) -> str:
        import torch

        long_form = len(audio) > 30 * SAMPLE_RATE
        features = self._hf_processor(
            audio,
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            # Beyond 30 s transformers transcribes long-form, which needs the whole clip + mask.
            **(
                {"truncation": False, "padding": "longest", "return_attention_mask": True}
                if long_form
                else {}
            ),
        )
        model = self._hf_whisper
        inputs = {"input_features": features.input_features.to(model.device, model.dtype)}
        if long_form:
            inputs["attention_mask"] = features.attention_mask.to(model.device)
        kwargs: dict[str, Any] = {
            "num_beams": self.beam_size,
            "max_new_tokens": self.asr_max_tokens,
        }
        if getattr(model.generation_config, "is_multilingual", False):
            kwargs["task"] = "transcribe"
            if self.language is not None:
                kwargs["language"] = self.language
        with torch.inference_mode():
            ids = model.generate(**inputs, **kwargs)
        texts: list[str] = self._hf_processor.batch_decode(ids, skip_special_tokens=True)
        return texts[0].strip()

    def answer(
        self,
        audio: np.ndarray,
        history: list[dict[str, str]],
        on_partial: PartialCallback | None = None,
    ) -> Answer:
        if self._llm is None and self._llm_remote is None:
            raise BackendError(f"model {self.spec.id!r}: answer() before load()")
        started = time.perf_counter()
        transcript = self.transcribe(np.asarray(audio, dtype=np.float32))
        asr_s = time.perf_counter() - started
        messages = textgen.chat_messages(
            self.options.system_prompt, history, transcript or EMPTY_TRANSCRIPT
        )
        if self._llm_remote is not None:
            remote = self._llm_remote.generate(messages, on_partial)
            total = time.perf_counter() - started
            timings = {"total": total, "asr": asr_s, "generate": remote.generate_s}
            if remote.tokens is not None:
                timings["tokens"] = float(remote.tokens)
            if remote.first_token_s is not None:
                timings["first_token"] = asr_s + remote.first_token_s
            return Answer(reply=remote.text, transcript=transcript, timings=timings)
        local = self._llm
        if local is None:  # checked above; the local LLM answers when no remote one does
            raise BackendError(f"model {self.spec.id!r}: answer() before load()")
        with self._llm_guard:
            inputs = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(self.options.device)
            generated = local.generate(dict(inputs), on_partial)
        total = time.perf_counter() - started
        timings = {
            "total": total,
            "asr": asr_s,
            "generate": generated.generate_s,
            "tokens": float(generated.tokens),
        }
        if generated.first_token_at is not None:
            # What the participant waits for: transcription plus the LLM's first token.
            timings["first_token"] = generated.first_token_at - started
        return Answer(reply=generated.text, transcript=transcript, timings=timings)
