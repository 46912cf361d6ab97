"""Settings and the API key every HTTP API backend reads the same way (OpenAI, Gemini, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from contract.modelsfile import ModelSpec
from contract.settings import env_value
from workers.backends.http import RetryPolicy
from workers.backends.spec_settings import SpecSettings


def system_text(system_prompt: str | None, language: str | None) -> str | None:
    """The system prompt, with the reply language appended when the study fixes one."""
    parts = [p for p in (system_prompt, f"Reply in {language}." if language else None) if p]
    return " ".join(parts) or None


@dataclass(frozen=True)
class ApiSettings:
    base_url: str
    system_prompt: str | None
    max_new_tokens: int
    temperature: float | None
    stream: bool
    timeout_s: float
    policy: RetryPolicy
    check_on_start: bool

    @classmethod
    def read(cls, spec: ModelSpec, s: SpecSettings, *, default_base_url: str | None) -> ApiSettings:
        """`base_url` is required where there is no default (a self-hosted server)."""
        base_url = (
            s.text("base_url") if default_base_url is None else s.text("base_url", default_base_url)
        )
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"model {spec.id!r}: setting 'base_url' must be an http(s) URL, got {base_url!r}"
            )
        return cls(
            base_url=base_url.rstrip("/"),
            system_prompt=system_text(s.text("system_prompt", None), s.text("language", None)),
            max_new_tokens=s.integer("max_new_tokens", 512, minimum=1),
            temperature=s.number("temperature", None, maximum=2.0),
            stream=s.flag("stream", True),
            timeout_s=s.number("timeout_s", 60.0, minimum=0.001),
            policy=RetryPolicy(
                retries=s.integer("retries", 2), backoff_s=s.number("backoff_s", 0.5)
            ),
            check_on_start=s.flag("check_on_start", True),
        )


def api_key(spec: ModelSpec, env_name: str) -> str:
    """The key from the environment or `.env` (as every setting); the error names the
    variable, never a value."""
    key = env_value(env_name)
    if key is None:
        raise ValueError(
            f"model {spec.id!r}: the API key variable {env_name} (setting 'api_key_env') is not "
            "set in the environment or in .env"
        )
    return key
