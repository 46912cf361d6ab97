"""Transformers models that hear the audio directly (Qwen2-Audio and relatives).

How a model's prompt and inputs are built is the one thing that differs between families, so it
sits in a small adapter chosen by the `adapter` setting:

    qwen2_audio     Qwen2-Audio-7B-Instruct: chat template with an audio slot, then the processor
                    turns text + waveform into input_ids / input_features (the default)
    processor_chat  processors whose `apply_chat_template` takes the waveform itself (Voxtral,
                    Qwen2.5-Omni's thinker); set `model_class` for the family
    diva            DiVA (trust_remote_code): the remote model's own generate / generate_stream
    typhoon_audio   Typhoon-Audio (trust_remote_code): the remote model's own generate with its
                    Llama-3 prompt pattern

The first two stream through workers.backends.textgen (static cache, torch.compile on CUDA); the
remote-code ones call the checkpoint's own generation functions, as their model cards show.

Settings (defaults in brackets):
    model          hub id / path / `local:` (required)
    adapter        one of ADAPTERS [qwen2_audio]
    model_class    transformers class to load with [per adapter]
    instruction    text sent with the audio in the user turn [none, except typhoon_audio]
    language       reply language, added to the system prompt [unset]
    and the generation settings of workers.backends.textgen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np
import torch

from contract.modelsfile import ModelSpec
from workers.backends import textgen
from workers.backends.base import SAMPLE_RATE, Answer, BackendError, PartialCallback

log = logging.getLogger(__name__)

MAX_AUDIO_SECONDS = 30
DEFAULT_MODEL_CLASS = {
    "qwen2_audio": "Qwen2AudioForConditionalGeneration",
    "processor_chat": "AutoModelForMultimodalLM",
    "diva": "AutoModel",
    "typhoon_audio": "AutoModel",
}
ADAPTERS = tuple(DEFAULT_MODEL_CLASS)
SETTINGS: dict[str, Any] = {
    **textgen.GENERATION_DEFAULTS,
    "model": None,
    "adapter": "qwen2_audio",
    "model_class": None,
    "instruction": None,
    "language": None,
}
TYPHOON_PROMPT_PATTERN = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n<Speech><SpeechHere></Speech> {{}}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
TYPHOON_DEFAULT_INSTRUCTION = "Respond to the speech conversationally."


def _model_class(spec: ModelSpec, name: str) -> Any:
    import transformers

    cls = getattr(transformers, name, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise textgen.setting_error(
            spec,
            "model_class",
            f"names no transformers {transformers.__version__} model class: {name!r}",
        )
    return cls


class Adapter(Protocol):
    def load(self, path: str, kwargs: dict[str, Any]) -> None: ...

    def generate(
        self,
        audio: np.ndarray,
        history: list[dict[str, str]],
        on_partial: PartialCallback | None,
    ) -> textgen.Generated: ...


class _ProcessorAdapter:
    """Processor + chat template + `generate` streamed through textgen (Qwen2-Audio style)."""

    def __init__(self, backend: HfAudioLmBackend) -> None:
        self.backend = backend
        self.processor: Any = None
        self.model: Any = None
        self.generator: textgen.StreamingGenerator | None = None

    def load(self, path: str, kwargs: dict[str, Any]) -> None:
        from transformers import AutoProcessor

        options = self.backend.options
        self.processor = AutoProcessor.from_pretrained(path, **kwargs)
        self.model = self.backend.model_cls.from_pretrained(path, dtype=options.dtype, **kwargs)
        self.model.to(options.device).eval()
        self.generator = textgen.StreamingGenerator(
            self.model, self.processor.tokenizer, options, label=self.backend.spec.id
        )

    def user_content(self, audio: np.ndarray) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [{"type": "audio", "audio": audio}]
        if self.backend.instruction:
            content.append({"type": "text", "text": self.backend.instruction})
        return content

    def inputs(self, audio: np.ndarray, history: list[dict[str, str]]) -> Mapping[str, Any]:
        messages = textgen.chat_messages(
            self.backend.system_prompt, history, self.user_content(audio)
        )
        # The template only needs to know an audio slot is there; the processor fills it in.
        for part in messages[-1]["content"]:
            if part["type"] == "audio":
                part["audio"] = "clip"
        text = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        # A BatchFeature: a mapping of input names to tensors.
        features: Mapping[str, Any] = self.processor(
            text=text, audio=[audio], sampling_rate=SAMPLE_RATE, return_tensors="pt"
        )
        return features

    def generate(
        self,
        audio: np.ndarray,
        history: list[dict[str, str]],
        on_partial: PartialCallback | None,
    ) -> textgen.Generated:
        if self.generator is None:
            raise BackendError(f"model {self.backend.spec.id!r}: answer() before load()")
        if len(audio) > MAX_AUDIO_SECONDS * SAMPLE_RATE:
            # Whisper-style encoders see one 30 s window; the processor cuts the rest off.
            log.warning(
                "model %r: clip of %.1f s is longer than the %d s the audio encoder hears; "
                "the rest is ignored",
                self.backend.spec.id,
                len(audio) / SAMPLE_RATE,
                MAX_AUDIO_SECONDS,
            )
        inputs = self.inputs(audio, history)
        inputs = {
            key: (
                value.to(self.model.device, self.model.dtype)
                if value.is_floating_point()
                else value.to(self.model.device)
            )
            for key, value in inputs.items()
            if hasattr(value, "to")
        }
        return self.generator.generate(inputs, on_partial)


class _ProcessorChatAdapter(_ProcessorAdapter):
    """Processors whose chat template takes the waveform and returns model inputs (Voxtral...)."""

    def inputs(self, audio: np.ndarray, history: list[dict[str, str]]) -> Mapping[str, Any]:
        messages = textgen.chat_messages(
            self.backend.system_prompt, history, self.user_content(audio)
        )
        features: Mapping[str, Any] = self.processor.apply_chat_template(
            messages,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        return features


class _RemoteCodeAdapter:
    """Checkpoints that ship their own generate functions (trust_remote_code)."""

    def __init__(self, backend: HfAudioLmBackend) -> None:
        self.backend = backend
        self.model: Any = None

    def load(self, path: str, kwargs: dict[str, Any]) -> None:
        if not self.backend.options.trust_remote_code:
            raise ValueError(
                f"model {self.backend.spec.id!r}: adapter {self.backend.adapter!r} runs the "
                "checkpoint's own code; set trust_remote_code = true"
            )
        options = self.backend.options
        self.model = self.backend.model_cls.from_pretrained(path, dtype=options.dtype, **kwargs)
        self.model.to(options.device).eval()

    def generate(
        self,
        audio: np.ndarray,
        history: list[dict[str, str]],
        on_partial: PartialCallback | None,
    ) -> textgen.Generated:
        import torch

        started = time.perf_counter()
        first: float | None = None
        text = ""
        with torch.inference_mode():
            for text in self.stream(audio):
                if first is None and text:
                    first = time.perf_counter()
                if on_partial is not None and text:
                    on_partial(text)
        return textgen.Generated(
            text=text.strip(),
            tokens=0,
            first_token_at=first,
            generate_s=time.perf_counter() - started,
            compiled=False,
        )

    def stream(self, audio: np.ndarray) -> Iterator[str]:
        """Yields the whole reply text so far, each time it grows."""
        raise NotImplementedError


class _DivaAdapter(_RemoteCodeAdapter):
    """DiVA: `generate_stream(audio, text_prompt, ...)` yields the whole reply so far.

    The remote code decodes greedily (its sampling branch reads an undefined `temperature`) and
    casts its inputs to float16, hence do_sample=False here and dtype = float16 in __init__.
    The text prompt sits in DiVA's system slot, so it gets the system prompt (or `instruction`).
    """

    def stream(self, audio: np.ndarray) -> Iterator[str]:
        options = self.backend.options
        prompt = self.backend.instruction or self.backend.system_prompt
        kwargs = {"do_sample": False, "max_new_tokens": options.max_new_tokens}
        if hasattr(self.model, "generate_stream"):
            yield from self.model.generate_stream(audio, prompt, **kwargs)
        else:
            yield self.model.generate([audio], prompt, **kwargs)[0]


class _TyphoonAudioAdapter(_RemoteCodeAdapter):
    """Typhoon-Audio: `generate(audio=, prompt=, prompt_pattern=, ...)` returns the reply."""

    def stream(self, audio: np.ndarray) -> Iterator[str]:
        options = self.backend.options
        pattern = TYPHOON_PROMPT_PATTERN.format(system=self.backend.system_prompt)
        yield self.model.generate(
            audio=audio,
            prompt=self.backend.instruction or TYPHOON_DEFAULT_INSTRUCTION,
            prompt_pattern=pattern,
            max_new_tokens=options.max_new_tokens,
            num_beams=1,
            **options.sampling_kwargs(),
        )


_ADAPTER_CLASSES: dict[str, type] = {
    "qwen2_audio": _ProcessorAdapter,
    "processor_chat": _ProcessorChatAdapter,
    "diva": _DivaAdapter,
    "typhoon_audio": _TyphoonAudioAdapter,
}


class HfAudioLmBackend:
    def __init__(self, spec: ModelSpec) -> None:
        textgen.check_keys(spec, SETTINGS)
        self.spec = spec
        self.options = textgen.GenerationOptions.from_spec(spec)
        self.model_ref = textgen.get_str(spec, "model", None)
        self.adapter = textgen.get_str(spec, "adapter", SETTINGS["adapter"], choices=ADAPTERS)
        self.model_class = (
            textgen.get_optional_str(spec, "model_class") or DEFAULT_MODEL_CLASS[self.adapter]
        )
        self.model_cls = _model_class(spec, self.model_class)
        self.instruction = textgen.get_optional_str(spec, "instruction")
        language = textgen.get_optional_str(spec, "language")
        self.system_prompt = self.options.system_prompt
        if language is not None:
            self.system_prompt += f" Always answer in this language: {language}."
        if self.adapter == "diva" and self.options.dtype != torch.float16:
            raise textgen.setting_error(
                spec, "dtype", "must be float16 for adapter 'diva' (its remote code casts to half)"
            )
        self._adapter: Adapter = _ADAPTER_CLASSES[self.adapter](self)
        self._loaded = False

    def load(self) -> None:
        path, kwargs = textgen.pretrained_kwargs(self.model_ref, self.options)
        self._adapter.load(path, kwargs)
        self._loaded = True

    def warmup(self) -> None:
        rng = np.random.default_rng(0)
        self.answer((rng.standard_normal(SAMPLE_RATE) * 1e-3).astype(np.float32), [])

    def answer(
        self,
        audio: np.ndarray,
        history: list[dict[str, str]],
        on_partial: PartialCallback | None = None,
    ) -> Answer:
        if not self._loaded:
            raise BackendError(f"model {self.spec.id!r}: answer() before load()")
        started = time.perf_counter()
        generated = self._adapter.generate(np.asarray(audio, dtype=np.float32), history, on_partial)
        timings = {
            "total": time.perf_counter() - started,
            "generate": generated.generate_s,
        }
        if generated.tokens:
            timings["tokens"] = float(generated.tokens)
        if generated.first_token_at is not None:
            # From the start of answer(): includes audio feature extraction and the prefill.
            timings["first_token"] = generated.first_token_at - started
        return Answer(reply=generated.text, transcript=None, timings=timings)
