"""Any OpenAI-compatible chat completions server with audio input, e.g. vLLM serving an audio LM.

Same request and streaming format as `openai_audio` (see there), with these differences:
    base_url     required (e.g. http://gpu-host:8000/v1)
    api_key_env  optional: no Authorization header unless it is set (vLLM's --api-key needs it)
    audio_part   "input_audio" (default: {"input_audio": {"data", "format": "wav"}}) or
                 "audio_url" ({"audio_url": {"url": "data:audio/wav;base64,..."}}), whichever the
                 server's model accepts
    max_tokens is sent as `max_tokens` (understood by every compatible server), and no
    `stream_options` unless given through extra_body.
"""

from __future__ import annotations

from typing import ClassVar

from workers.backends.openai_audio import ChatCompletionsBackend


class OpenAiCompatibleBackend(ChatCompletionsBackend):
    extra_settings: ClassVar[tuple[str, ...]] = ("audio_part",)
    default_base_url: ClassVar[str | None] = None
    default_api_key_env: ClassVar[str | None] = None
    max_tokens_field: ClassVar[str] = "max_tokens"
    audio_parts: ClassVar[tuple[str, ...]] = ("input_audio", "audio_url")
    stream_usage: ClassVar[bool] = False
