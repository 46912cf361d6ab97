"""What every use case of the study service works over."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from redis import Redis

from bot.core import Study
from contract.modelsfile import ModelsFile


@dataclass(frozen=True)
class Deps:
    """The study core plus the few settings and connections the use cases need.

    `redis` is the core's async client (the service keeps the participant's private-thread id
    under `contract.keys.participant_thread`); `rq_conn` is the synchronous, non-decoding
    connection `bot.dispatch` takes.
    """

    study: Study
    redis: aioredis.Redis
    rq_conn: Redis  # not `redis.Redis`: the field `redis` above shadows the module here
    models: ModelsFile
    consent_version: str
    job_timeout_s: int
    data_dir: Path
    clock: Callable[[], float] = field(default=time.time)

    def display_name(self, model_id: str) -> str:
        # A model dropped from the models file since the battle still shows, by its id.
        spec = self.models.models.get(model_id)
        return spec.display_name if spec is not None else model_id
