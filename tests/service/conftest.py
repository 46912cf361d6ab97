"""Fixtures of the service tests: a StudyService over a real Redis (the core's and RQ's
connections on the same db), a settable clock and a models file; no Discord anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from bot.core import Study
from bot.service import StudyService
from contract.modelsfile import ModelsFile
from devstack.clips import pcm_wav
from tests.core.conftest import clock, data_dir, models_file, redis_client, study
from tests.core.helpers import Clock

# The study core's fixtures, shared rather than copied (pytest finds them through these names).
__all__ = ["clock", "data_dir", "models_file", "redis_client", "study"]

CONSENT_VERSION = "1"
JOB_TIMEOUT_S = 60


def tone(seconds: float, rate: int = 16_000) -> bytes:
    """A real WAV clip of a quiet 220 Hz tone (probe reads its length)."""
    t = np.arange(int(seconds * rate)) / rate
    return pcm_wav(0.2 * np.sin(2 * np.pi * 220 * t), rate)


@pytest.fixture
def rq_conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_service(
    study: Study,
    redis_client: aioredis.Redis,
    rq_conn: redis.Redis,
    models_file: ModelsFile,
    data_dir: Path,
    clock: Clock,
    *,
    consent_version: str = CONSENT_VERSION,
) -> StudyService:
    return StudyService(
        study,
        redis_client=redis_client,
        rq_conn=rq_conn,
        models=models_file,
        consent_version=consent_version,
        job_timeout_s=JOB_TIMEOUT_S,
        data_dir=data_dir,
        clock=clock,
    )


@pytest.fixture
def service(
    study: Study,
    redis_client: aioredis.Redis,
    rq_conn: redis.Redis,
    models_file: ModelsFile,
    data_dir: Path,
    clock: Clock,
) -> StudyService:
    return make_service(study, redis_client, rq_conn, models_file, data_dir, clock)
