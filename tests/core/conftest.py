"""Fixtures of the study-core tests: a Study over a real Redis, a settable clock, a models file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.core import Study
from contract.modelsfile import ModelsFile, load_models_file
from tests.core.helpers import MODELS_TOML, Clock, make_study


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
def study(
    redis_client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> Study:
    return make_study(redis_client, models_file, data_dir, clock)
