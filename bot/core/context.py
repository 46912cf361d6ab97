"""What every concern of the study core shares: the client, its scripts, the clock, the secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from bot.core.identity import IdentityGuard, guard_for
from bot.core.scripts import Scripts
from contract.modelsfile import ModelsFile

PSEUDONYM_CHARS = 16


def utc_day(at: float) -> tuple[str, float]:
    """The UTC day of `at` as YYYY-MM-DD, and the unix time that day ends."""
    moment = datetime.fromtimestamp(at, UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%d"), (start + timedelta(days=1)).timestamp()


@dataclass(frozen=True)
class StudyContext:
    redis: aioredis.Redis
    secret: bytes
    data_dir: Path
    known_models: ModelsFile
    rng: np.random.Generator
    clock: Callable[[], float]
    scripts: Scripts = field(init=False)
    # Masks model names in replies (bot/core/identity.py), built from the models file.
    guard: IdentityGuard = field(init=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError(f"secret must be at least 16 bytes (got {len(self.secret)})")
        object.__setattr__(self, "scripts", Scripts(self.redis))
        object.__setattr__(self, "guard", guard_for(self.known_models))

    def pseudonym(self, discord_id: int) -> str:
        """HMAC-SHA256(secret, str(discord_id)), hex, first PSEUDONYM_CHARS characters."""
        if isinstance(discord_id, bool) or not isinstance(discord_id, int) or discord_id <= 0:
            raise ValueError(f"discord_id must be a positive int, got {discord_id!r}")
        digest = hmac.new(self.secret, str(discord_id).encode(), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_CHARS]
