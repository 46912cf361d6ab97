"""OpenAI chat completions with audio input (gpt-4o-audio-preview and successors), over aiohttp.

Request (POST {base_url}/chat/completions): the system prompt, the earlier turns as text, then a
user message whose content is one `input_audio` part ({"data": <base64 WAV>, "format": "wav"}).
With `stream = true` the reply arrives as Server-Sent Events of `chat.completion.chunk` objects
(`choices[0].delta.content`), ended by `data: [DONE]`; partial text goes to `on_partial`.

Settings (all but `model` optional):
    model            the API model name, e.g. "gpt-4o-audio-preview"
    api_key_env      environment variable holding the key (default OPENAI_API_KEY)
    base_url         default https://api.openai.com/v1 (tests point it at a local server)
    system_prompt, language, max_new_tokens, temperature
    stream           default true
    timeout_s        per request (default 60); retries (default 2); backoff_s (default 0.5)
    check_on_start   GET {base_url}/models at warmup and look for `model` there, so a bad key
                     or model name fails at start
                     (default true)
    extra_body       a table merged into the request (provider-specific parameters)
    audio_out        (openai_audio) true: the model speaks its reply itself (`modalities`
                     ["text", "audio"]); in reply modes speech/both the participant hears that
                     audio instead of the study's voice (default false: text only)
    audio_voice      the model's own voice with audio_out (default "alloy")

`OpenAiCompatibleBackend` (openai_compatible.py) reuses all of this for any server that speaks
the same API.
"""

from __future__ import annotations

import base64
import time
from typing import Any, ClassVar

import numpy as np

from contract.audio import encode_wav
from contract.modelsfile import ModelSpec
from workers.backends.api_settings import ApiSettings, api_key
from workers.backends.base import Answer, BackendError, PartialCallback
from workers.backends.http import ApiClient
from workers.backends.spec_settings import SpecSettings

COMMON_SETTINGS = (
    "model",
    "api_key_env",
    "base_url",
    "system_prompt",
    "language",
    "max_new_tokens",
    "temperature",
    "stream",
    "timeout_s",
    "retries",
    "backoff_s",
    "check_on_start",
    "extra_body",
)


class ChatCompletionsBackend:
    """Shared by openai_audio and openai_compatible: the chat completions API with audio in."""

    extra_settings: ClassVar[tuple[str, ...]] = ()
    # Answers share one ApiClient, which runs any number of requests at once.
    concurrent: ClassVar[bool] = True
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    default_api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    # OpenAI renamed max_tokens to max_completion_tokens; servers such as vLLM take either.
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
    audio_parts: ClassVar[tuple[str, ...]] = ("input_audio",)
    # Ask for token usage in the last stream chunk (OpenAI; not every compatible server has it).
    stream_usage: ClassVar[bool] = True

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        s = SpecSettings(spec, COMMON_SETTINGS + self.extra_settings)
        self.model: str = s.text("model")
        self.api_key_env: str | None = s.text("api_key_env", self.default_api_key_env)
        self.api = ApiSettings.read(spec, s, default_base_url=self.default_base_url)
        self.extra_body: dict[str, Any] = dict(s.table("extra_body", {}))
        self.audio_part: str = (
            s.choice("audio_part", self.audio_parts, self.audio_parts[0])
            if "audio_part" in self.extra_settings
            else self.audio_parts[0]
        )
        if "audio_out" in self.extra_settings:
            self.audio_out = bool(s.flag("audio_out", False))
            self.audio_voice = str(s.text("audio_voice", "alloy"))
        self._key: str | None = None
        self._client: ApiClient | None = None

    def __repr__(self) -> str:
        # Never the key.
        return f"{type(self).__name__}(id={self.spec.id!r}, model={self.model!r})"

    # --- lifecycle -------------------------------------------------------------------------

    def load(self) -> None:
        if self.api_key_env is not None:
            self._key = api_key(self.spec, self.api_key_env)
        self._client = ApiClient(
            name=f"{self.spec.backend} model {self.spec.id!r}",
            timeout_s=self.api.timeout_s,
            policy=self.api.policy,
            secrets=(self._key,) if self._key else (),
        )

    def warmup(self) -> None:
        if self.api.check_on_start:
            # Costs nothing and proves the key and the model name before the first participant.
            client = self._ready()
            listing = client.run(client.get_json(f"{self.api.base_url}/models", self._headers()))
            served = [str(m.get("id")) for m in listing.get("data") or [] if isinstance(m, dict)]
            if self.model not in served:
                raise BackendError(
                    f"model {self.spec.id!r}: {self.api.base_url} does not serve {self.model!r}; "
                    f"it serves: {', '.join(served[:20]) or 'nothing'}"
                )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _ready(self) -> ApiClient:
        if self._client is None:
            raise BackendError(f"model {self.spec.id!r} is not loaded (call load() first)")
        return self._client

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    # --- requests --------------------------------------------------------------------------

    # Audio out (a model that speaks for itself): off here; OpenAiAudioBackend reads settings.
    audio_out: bool = False
    audio_voice: str = "alloy"

    def audio_content(self, wav_b64: str) -> dict[str, Any]:
        if self.audio_part == "audio_url":
            return {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{wav_b64}"}}
        return {"type": "input_audio", "input_audio": {"data": wav_b64, "format": "wav"}}

    def payload(self, wav_b64: str, history: list[dict[str, str]]) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if self.api.system_prompt:
            messages.append({"role": "system", "content": self.api.system_prompt})
        for turn in history:
            if turn.get("role") not in ("user", "assistant"):
                raise BackendError(
                    f"history turn with role {turn.get('role')!r}; want user/assistant"
                )
            messages.append({"role": turn["role"], "content": str(turn.get("content", ""))})
        messages.append({"role": "user", "content": [self.audio_content(wav_b64)]})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            self.max_tokens_field: self.api.max_new_tokens,
        }
        if self.api.temperature is not None:
            body["temperature"] = self.api.temperature
        if self.api.stream:
            body["stream"] = True
            if self.stream_usage:
                body["stream_options"] = {"include_usage": True}
        if self.audio_out:
            # OpenAI streams audio only as raw pcm16 (24 kHz mono); whole answers come as WAV.
            body["modalities"] = ["text", "audio"]
            body["audio"] = {
                "voice": self.audio_voice,
                "format": "pcm16" if self.api.stream else "wav",
            }
        body.update(self.extra_body)
        return body

    def answer(
        self,
        audio: np.ndarray,
        history: list[dict[str, str]],
        on_partial: PartialCallback | None = None,
    ) -> Answer:
        client = self._ready()
        started = time.perf_counter()
        wav_b64 = base64.b64encode(encode_wav(audio)).decode("ascii")
        timings: dict[str, float] = {"encode_audio": time.perf_counter() - started}
        body = self.payload(wav_b64, history)
        url = f"{self.api.base_url}/chat/completions"
        pieces: list[str] = []
        finish: list[str] = []
        refusal: list[str] = []
        usage: dict[str, Any] = {}
        speech: list[bytes] = []  # the model's own audio (audio_out): pcm16 pieces, or one WAV
        if self.api.stream:

            def on_event(event: dict[str, Any]) -> None:
                usage.update(event.get("usage") or {})
                for choice in event.get("choices") or []:
                    refusal.append((choice.get("delta") or {}).get("refusal") or "")
                    spoken = (choice.get("delta") or {}).get("audio") or {}
                    if spoken.get("data"):
                        speech.append(_b64(spoken["data"], self.spec.id))
                    # With audio out the words arrive as the audio's transcript.
                    delta = (choice.get("delta") or {}).get("content") or spoken.get("transcript")
                    if delta:
                        if not pieces:
                            timings["first_token"] = time.perf_counter() - started
                        pieces.append(delta)
                        if on_partial is not None:
                            on_partial("".join(pieces))
                    if choice.get("finish_reason"):
                        finish.append(choice["finish_reason"])

            client.run(client.post_sse(url, body, self._headers(), on_event))
        else:
            data = client.run(client.post_json(url, body, self._headers()))
            usage.update(data.get("usage") or {})
            choices = data.get("choices") or []
            if not choices:
                raise BackendError(f"model {self.spec.id!r}: answer has no choices")
            message = choices[0].get("message") or {}
            spoken = message.get("audio") or {}
            if spoken.get("data"):
                speech.append(_b64(spoken["data"], self.spec.id))
            pieces.append(message.get("content") or spoken.get("transcript") or "")
            refusal.append(message.get("refusal") or "")
            if choices[0].get("finish_reason"):
                finish.append(choices[0]["finish_reason"])
        reply = "".join(pieces).strip()
        if not reply:
            # The model declined (OpenAI puts the refusal text in its own field) or said nothing.
            refused = "".join(refusal).strip()
            if refused:
                # The refusal is the model's text: its length only, never its content.
                raise BackendError(
                    f"model {self.spec.id!r} refused to answer ({len(refused)} characters)"
                )
            why = f" (finish_reason {finish[-1]})" if finish else ""
            raise BackendError(f"model {self.spec.id!r} returned an empty reply{why}")
        timings["total"] = time.perf_counter() - started
        if "completion_tokens" in usage:
            timings["tokens"] = float(usage["completion_tokens"])
        own_audio: bytes | None = None
        if self.audio_out:
            if not speech:
                raise BackendError(f"model {self.spec.id!r} was asked to speak but sent no audio")
            own_audio = _pcm16_wav(b"".join(speech)) if self.api.stream else speech[0]
        return Answer(reply=reply, transcript=None, timings=timings, audio=own_audio)


# OpenAI's streamed `pcm16` audio: 16-bit little-endian mono at 24 kHz.
PCM16_RATE = 24_000


def _b64(data: object, model_id: str) -> bytes:
    try:
        return base64.b64decode(str(data), validate=True)
    except ValueError:
        # Never the data itself: it is the model's speech.
        raise BackendError(f"model {model_id!r} sent audio that is not base64") from None


def _pcm16_wav(pcm: bytes) -> bytes:
    """Raw pcm16 pieces as one WAV file (what the worker stores and Discord plays)."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    return encode_wav(samples, PCM16_RATE)


class OpenAiAudioBackend(ChatCompletionsBackend):
    """OpenAI's own API; its audio models can also speak their reply (`audio_out`)."""

    extra_settings: ClassVar[tuple[str, ...]] = ("audio_out", "audio_voice")
