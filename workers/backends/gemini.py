"""Gemini `generateContent` with inline audio, over aiohttp.

Request (POST {base_url}/models/{model}:generateContent, key in the `x-goog-api-key` header):
`system_instruction`, the earlier turns as `contents` (roles "user" / "model"), then a user turn
whose one part is `inline_data` {"mime_type": "audio/wav", "data": <base64 WAV>}; sampling goes in
`generationConfig`. The answer's text is the concatenated `candidates[0].content.parts[].text`.
With `stream = true` it calls `:streamGenerateContent?alt=sse`, whose SSE events are each a
whole `GenerateContentResponse` carrying the next piece of text.

Settings (all but `model` optional):
    model            e.g. "gemini-2.5-flash"
    api_key_env      default GEMINI_API_KEY
    base_url         default https://generativelanguage.googleapis.com/v1beta
    system_prompt, language, max_new_tokens, temperature
    stream           default true
    timeout_s (60), retries (2), backoff_s (0.5)
    check_on_start   GET {base_url}/models/{model} at warmup (default true)
    extra_generation_config  a table merged into generationConfig
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

SETTINGS = (
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
    "extra_generation_config",
)
_ROLES = {"user": "user", "assistant": "model"}


def candidate_text(response: dict[str, Any]) -> tuple[str, str | None]:
    """(text, finishReason) of the first candidate; refuses a blocked prompt loudly."""
    feedback = response.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        raise BackendError(f"Gemini blocked the prompt: {feedback['blockReason']}")
    candidates = response.get("candidates") or []
    if not candidates:
        return "", None
    first = candidates[0]
    parts = (first.get("content") or {}).get("parts") or []
    # Thinking models may return thought parts ("thought": true); those are not the reply.
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))
    return text, first.get("finishReason")


class GeminiBackend:
    # Answers share one ApiClient, which runs any number of requests at once.
    concurrent: ClassVar[bool] = True

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        s = SpecSettings(spec, SETTINGS)
        self.model: str = s.text("model").removeprefix("models/")
        self.api_key_env: str = s.text("api_key_env", "GEMINI_API_KEY")
        self.api = ApiSettings.read(
            spec, s, default_base_url="https://generativelanguage.googleapis.com/v1beta"
        )
        self.extra_generation_config: dict[str, Any] = dict(s.table("extra_generation_config", {}))
        self._key: str | None = None
        self._client: ApiClient | None = None

    def __repr__(self) -> str:
        return f"GeminiBackend(id={self.spec.id!r}, model={self.model!r})"

    def load(self) -> None:
        key = self._key = api_key(self.spec, self.api_key_env)
        self._client = ApiClient(
            name=f"gemini model {self.spec.id!r}",
            timeout_s=self.api.timeout_s,
            policy=self.api.policy,
            secrets=(key,),
        )

    def warmup(self) -> None:
        if self.api.check_on_start:
            client = self._ready()
            client.run(client.get_json(f"{self.api.base_url}/models/{self.model}", self._headers()))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _ready(self) -> ApiClient:
        if self._client is None or self._key is None:
            raise BackendError(f"model {self.spec.id!r} is not loaded (call load() first)")
        return self._client

    def _headers(self) -> dict[str, str]:
        # The header, not the ?key= query parameter: URLs end up in logs, headers do not.
        return {"Content-Type": "application/json", "x-goog-api-key": self._key or ""}

    def payload(self, wav_b64: str, history: list[dict[str, str]]) -> dict[str, Any]:
        contents: list[dict[str, Any]] = []
        for turn in history:
            role = _ROLES.get(turn.get("role", ""))
            if role is None:
                raise BackendError(
                    f"history turn with role {turn.get('role')!r}; want user/assistant"
                )
            contents.append({"role": role, "parts": [{"text": str(turn.get("content", ""))}]})
        contents.append(
            {
                "role": "user",
                "parts": [{"inline_data": {"mime_type": "audio/wav", "data": wav_b64}}],
            }
        )
        config: dict[str, Any] = {"maxOutputTokens": self.api.max_new_tokens}
        if self.api.temperature is not None:
            config["temperature"] = self.api.temperature
        config.update(self.extra_generation_config)
        body: dict[str, Any] = {"contents": contents, "generationConfig": config}
        if self.api.system_prompt:
            body["system_instruction"] = {"parts": [{"text": self.api.system_prompt}]}
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
        pieces: list[str] = []
        finish: list[str] = []
        usage: dict[str, Any] = {}
        if self.api.stream:
            url = f"{self.api.base_url}/models/{self.model}:streamGenerateContent?alt=sse"

            def on_event(event: dict[str, Any]) -> None:
                usage.update(event.get("usageMetadata") or {})
                text, reason = self._text(event)
                if reason:
                    finish.append(reason)
                if text:
                    if not pieces:
                        timings["first_token"] = time.perf_counter() - started
                    pieces.append(text)
                    if on_partial is not None:
                        on_partial("".join(pieces))

            client.run(client.post_sse(url, body, self._headers(), on_event))
        else:
            url = f"{self.api.base_url}/models/{self.model}:generateContent"
            data = client.run(client.post_json(url, body, self._headers()))
            usage.update(data.get("usageMetadata") or {})
            text, reason = self._text(data)
            pieces.append(text)
            if reason:
                finish.append(reason)
        reply = "".join(pieces).strip()
        if not reply:
            why = f" (finishReason {finish[-1]})" if finish else ""
            raise BackendError(f"model {self.spec.id!r} returned an empty reply{why}")
        timings["total"] = time.perf_counter() - started
        if "candidatesTokenCount" in usage:
            timings["tokens"] = float(usage["candidatesTokenCount"])
        return Answer(reply=reply, transcript=None, timings=timings)

    def _text(self, response: dict[str, Any]) -> tuple[str, str | None]:
        try:
            return candidate_text(response)
        except BackendError as exc:
            raise BackendError(f"model {self.spec.id!r}: {exc}") from None
