"""Parley's one settings object, read from the environment and `.env`.

Every process (bot, worker, export, demo) builds a `Settings` with `load_settings()` and passes
it down; nothing else reads the environment. Names are the ones in docs/interfaces.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    discord_token: SecretStr | None = Field(None, validation_alias="DISCORD_TOKEN")
    redis_url: str = Field("redis://localhost:6379/0", validation_alias="REDIS_URL")
    models_file: Path | None = Field(None, validation_alias="PARLEY_MODELS")
    data_dir: Path = Field(Path("./data"), validation_alias="PARLEY_DATA_DIR")
    secret: SecretStr | None = Field(None, validation_alias="PARLEY_SECRET")
    guild_id: int | None = Field(None, validation_alias="PARLEY_GUILD_ID")
    moderator_role: str | None = Field(None, validation_alias="PARLEY_MODERATOR_ROLE")
    study_channel: str | None = Field(None, validation_alias="PARLEY_STUDY_CHANNEL")
    discord_api_base: str = Field(
        "https://discord.com/api/v10", validation_alias="DISCORD_API_BASE"
    )
    discord_gateway_url: str = Field(
        "wss://gateway.discord.gg/", validation_alias="DISCORD_GATEWAY_URL"
    )
    # Tests and the demo run on a Redis without AOF; a real study must not (votes would be lost).
    allow_volatile_redis: bool = Field(False, validation_alias="PARLEY_ALLOW_VOLATILE_REDIS")
    consent_file: Path | None = Field(None, validation_alias="PARLEY_CONSENT_FILE")
    consent_version: str = Field("1", validation_alias="PARLEY_CONSENT_VERSION")
    log_level: str = Field("INFO", validation_alias="PARLEY_LOG_LEVEL")
    job_timeout_s: int = Field(180, validation_alias="PARLEY_JOB_TIMEOUT")
    # Seconds between two passes of the abandoned-job sweeper (bot/sweeper.py).
    sweep_interval_s: float = Field(30.0, validation_alias="PARLEY_SWEEP_INTERVAL")
    # Prometheus /metrics (bot and worker); off unless a port is set. A worker's --metrics-port
    # overrides it (several workers on one host need a port each).
    metrics_port: int | None = Field(None, validation_alias="PARLEY_METRICS_PORT")
    metrics_addr: str = Field("0.0.0.0", validation_alias="PARLEY_METRICS_ADDR")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must start with redis://, rediss:// or unix://, got {value!r}")
        return value

    @field_validator("discord_api_base", "discord_gateway_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"must be an http(s):// or ws(s):// URL, got {value!r}")
        return value

    @field_validator("metrics_port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 65535:
            raise ValueError(f"must be a TCP port 0..65535, got {value}")
        return value

    @field_validator("secret")
    @classmethod
    def _secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (it keys participant pseudonyms)")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
        return value

    @field_validator("job_timeout_s", "sweep_interval_s")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"must be a positive number of seconds, got {value}")
        return value

    # Each process checks the settings it cannot run without, so the error comes at start-up.
    def require(self, *names: str) -> Settings:
        missing = [_ENV_NAMES[name] for name in names if getattr(self, name) in (None, "")]
        if missing:
            raise SettingsError(
                "missing required setting(s): "
                + ", ".join(missing)
                + " (set them in the environment or in .env; see .env.example)"
            )
        return self

    def for_bot(self) -> Settings:
        return self.require("discord_token", "secret", "guild_id", "models_file")

    def for_worker(self) -> Settings:
        return self.require("models_file")

    @property
    def secret_bytes(self) -> bytes:
        if self.secret is None:
            raise SettingsError("missing required setting: PARLEY_SECRET")
        return self.secret.get_secret_value().encode()


_ENV_NAMES = {
    name: (field.validation_alias if isinstance(field.validation_alias, str) else name.upper())
    for name, field in Settings.model_fields.items()
}


_SECRET_FIELDS = {"discord_token", "secret", "DISCORD_TOKEN", "PARLEY_SECRET"}


def load_settings(**overrides: Any) -> Settings:
    """Read the environment / `.env`; validation errors become one message naming each variable."""
    # Overrides are raw values keyed by env name (PARLEY_MODELS=...): pydantic validates and
    # converts them like the environment's strings, so they are Any until then.
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = str(err["loc"][0]) if err["loc"] else "?"
            env = _ENV_NAMES.get(loc, loc)
            # Never echo a secret back into a log.
            shown = "" if loc in _SECRET_FIELDS else f" (got {err.get('input')!r})"
            problems.append(f"{env}: {err['msg']}{shown}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None


def env_value(name: str) -> str | None:
    """A variable whose name is known only at run time (a model's `api_key_env`), read the way
    every setting is: the environment first, then `.env` in the working directory. None when
    unset or blank."""
    value = os.environ.get(name)
    if value is None:
        env_file = Settings.model_config.get("env_file")
        if isinstance(env_file, str | Path) and Path(env_file).is_file():
            value = dotenv_values(env_file, encoding="utf-8").get(name)
    value = (value or "").strip()
    return value or None
