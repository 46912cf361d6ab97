"""The ASR pipeline's stages on an OpenAI-compatible server (vLLM, or any server of that API).

- `RemoteChat`: the LLM stage, `POST {base_url}/chat/completions` with the transcript as text
  (streamed over SSE by default, so partial text reaches the participant as it comes). vLLM:
  `vllm serve meta-llama/Meta-Llama-3-8B-Instruct`.
- `RemoteTranscriber`: the ASR stage, `POST {base_url}/audio/transcriptions` (multipart: the
  clip as 16 kHz WAV, `model`, `language`, `response_format=json`) answering `{"text": ...}`.
  vLLM: `vllm serve openai/whisper-large-v3-turbo`.

Both use the API backends' client (workers/backends/http.py): timeouts, retries of 429/5xx with
backoff, keys only in headers and scrubbed from errors. Both can run any number of requests at
once (the worker's `--concurrency`): the server batches them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.audio import encode_wav
from workers.backends.api_settings import api_key
from workers.backends.base import BackendError, PartialCallback
from workers.backends.http import ApiClient, RetryPolicy


@dataclass(frozen=True)
class Endpoint:
    """One OpenAI-compatible server and the model it serves there."""

    label: str  # for messages: "model 'x' (LLM stage)"
    base_url: str
    model: str
    api_key_env: str | None
    timeout_s: float
    policy: RetryPolicy
    check_on_start: bool

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"{self.label}: base_url must be an http(s) URL, got {self.base_url!r}"
            )


class _Remote:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.base_url = endpoint.base_url.rstrip("/")
        self._key: str | None = None
        self._client: ApiClient | None = None

    def load(self, spec: Any) -> None:
        if self.endpoint.api_key_env is not None:
            self._key = api_key(spec, self.endpoint.api_key_env)
        self._client = ApiClient(
            name=self.endpoint.label,
            timeout_s=self.endpoint.timeout_s,
            policy=self.endpoint.policy,
            secrets=(self._key,) if self._key else (),
        )

    def check(self) -> None:
        """The server is up and serves the model (a free GET /models)."""
        if not self.endpoint.check_on_start:
            return
        client = self._ready()
        listing = client.run(client.get_json(f"{self.base_url}/models", self.headers()))
        served = [str(m.get("id")) for m in listing.get("data") or [] if isinstance(m, dict)]
        if self.endpoint.model not in served:
            raise BackendError(
                f"{self.endpoint.label}: {self.base_url} does not serve "
                f"{self.endpoint.model!r}; it serves: {', '.join(served[:20]) or 'nothing'}"
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def headers(self, *, json_body: bool = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if json_body else {}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _ready(self) -> ApiClient:
        if self._client is None:
            raise BackendError(f"{self.endpoint.label} is not loaded (call load() first)")
        return self._client


@dataclass(frozen=True)
class RemoteGeneration:
    text: str
    generate_s: float
    first_token_s: float | None  # from the request, where the reply streamed
    tokens: int | None


class RemoteChat(_Remote):
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        stream: bool,
    ) -> None:
        super().__init__(endpoint)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.stream = stream

    def payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
        if self.stream:
            body["stream"] = True
        return body

    def generate(
        self, messages: list[dict[str, str]], on_partial: PartialCallback | None
    ) -> RemoteGeneration:
        client = self._ready()
        url = f"{self.base_url}/chat/completions"
        started = time.perf_counter()
        pieces: list[str] = []
        first: list[float] = []
        usage: dict[str, Any] = {}
        if self.stream:

            def on_event(event: dict[str, Any]) -> None:
                usage.update(event.get("usage") or {})
                for choice in event.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        if not first:
                            first.append(time.perf_counter() - started)
                        pieces.append(delta)
                        if on_partial is not None:
                            on_partial("".join(pieces))

            client.run(client.post_sse(url, self.payload(messages), self.headers(), on_event))
        else:
            data = client.run(client.post_json(url, self.payload(messages), self.headers()))
            usage.update(data.get("usage") or {})
            choices = data.get("choices") or []
            if not choices:
                raise BackendError(f"{self.endpoint.label}: answer has no choices")
            pieces.append((choices[0].get("message") or {}).get("content") or "")
        text = "".join(pieces).strip()
        if not text:
            raise BackendError(f"{self.endpoint.label} returned an empty reply")
        tokens = usage.get("completion_tokens")
        return RemoteGeneration(
            text=text,
            generate_s=time.perf_counter() - started,
            first_token_s=first[0] if first else None,
            tokens=int(tokens) if isinstance(tokens, int) else None,
        )


class RemoteTranscriber(_Remote):
    def __init__(self, endpoint: Endpoint, *, language: str | None) -> None:
        super().__init__(endpoint)
        self.language = language

    def transcribe(self, audio: np.ndarray) -> str:
        client = self._ready()
        fields = {"model": self.endpoint.model, "response_format": "json", "temperature": "0"}
        if self.language is not None:
            fields["language"] = self.language
        files = {"file": ("clip.wav", encode_wav(audio), "audio/wav")}
        data = client.run(
            client.post_multipart(
                f"{self.base_url}/audio/transcriptions",
                fields,
                files,
                self.headers(json_body=False),
            )
        )
        text = data.get("text")
        if not isinstance(text, str):
            raise BackendError(
                f"{self.endpoint.label}: transcription answer has no text: {sorted(data)}"
            )
        return text.strip()
