"""Fixtures of the service tests: a StudyService over a real Redis (the core's and RQ's
connections on the same db), a settable clock and a models file; no Discord anywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from bot.core import Study
from bot.service import StudyService
from contract.modelsfile import ModelsFile, load_models_file
from devstack.clips import pcm_wav
from tests.core.helpers import MODELS_TOML, Clock, make_study

CONSENT_VERSION = "1"
JOB_TIMEOUT_S = 60


def tone(seconds: float, rate: int = 16_000) -> bytes:
    """A real WAV clip of a quiet 220 Hz tone (probe reads its length)."""
    t = np.arange(int(seconds * rate)) / rate
    return pcm_wav(0.2 * np.sin(2 * np.pi * 220 * t), rate)


@pytest.fixture
def models_file(tmp_path: Path) -> ModelsFile:
    path = tmp_path / "models.toml"
    path.write_text(MODELS_TOML)
    return load_models_file(path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=False)
    yield client
    await client.aclose()


@pytest.fixture
def rq_conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def study(
    redis_client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> Study:
    return make_study(redis_client, models_file, data_dir, clock)


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
