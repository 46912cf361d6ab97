"""`StudyService`: every use case of the bot that is not Discord, in one object the cogs call."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis
import redis.asyncio as aioredis

from bot.core import Study
from bot.service.battles import Battles
from bot.service.clips import ClipIntake
from bot.service.deps import Deps
from bot.service.moderation import Moderation
from bot.service.participants import Participants
from contract.modelsfile import ModelsFile


class StudyService:
    """The use cases by area: `clips` (a voice message in), `participants` (joining, consent,
    leaving), `battles` (vote, reveal, comment) and `moderation`."""

    def __init__(
        self,
        study: Study,
        *,
        redis_client: aioredis.Redis,
        rq_conn: redis.Redis,
        models: ModelsFile,
        consent_version: str,
        job_timeout_s: int,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.deps = Deps(
            study=study,
            redis=redis_client,
            rq_conn=rq_conn,
            models=models,
            consent_version=consent_version,
            job_timeout_s=job_timeout_s,
            data_dir=Path(data_dir),
            clock=clock,
        )
        self.clips = ClipIntake(self.deps)
        self.participants = Participants(self.deps)
        self.battles = Battles(self.deps)
        self.moderation = Moderation(self.deps)

    @property
    def study(self) -> Study:
        return self.deps.study

    def pseudonym(self, user_id: int) -> str:
        return self.deps.study.pseudonym(user_id)
