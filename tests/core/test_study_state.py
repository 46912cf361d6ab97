"""A new study starts closed: nothing starts a battle until a moderator opens it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from bot.core import Refused, Study, StudyState
from contract.modelsfile import ModelsFile
from tests.core.helpers import AUDIO, SECRET, Clock


def closed_study(
    client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> Study:
    # As bot/__main__.py builds it: no initial_state, so the production default.
    return Study(
        client,
        secret=SECRET,
        data_dir=data_dir,
        known_models=models_file,
        rng=np.random.default_rng(3),
        clock=clock,
    )


@pytest.mark.asyncio
async def test_a_new_study_is_closed_with_the_whole_models_file_proposed(
    redis_client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> None:
    study = closed_study(redis_client, models_file, data_dir, clock)
    config = await study.config()
    assert config.state is StudyState.CLOSED
    assert config.roster == ("alpha", "beta", "delta", "gamma")


@pytest.mark.asyncio
async def test_before_the_first_open_a_participant_reads_not_open_yet(
    redis_client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> None:
    study = closed_study(redis_client, models_file, data_dir, clock)
    await study.consent(1, "1")
    with pytest.raises(Refused) as before:
        await study.check_eligibility(1)
    assert before.value.code == "not_open_yet"
    assert "not open yet" in before.value.message
    with pytest.raises(Refused) as starting:
        await study.start_battle(1, AUDIO, 2.0, "ogg")
    assert starting.value.code == "not_open_yet"
    assert not list(data_dir.rglob("*.ogg")), "a refused clip must not stay on disk"

    await study.set_state(StudyState.OPEN, by="mod")
    battle = await study.start_battle(1, AUDIO, 2.0, "ogg")
    assert battle.model_a != battle.model_b

    # Closed after it ran: the study's end, no longer "not open yet".
    await study.set_state(StudyState.CLOSED, by="mod")
    with pytest.raises(Refused) as after:
        await study.check_eligibility(1)
    assert after.value.code == "closed"


@pytest.mark.asyncio
async def test_a_paused_never_opened_study_says_paused(
    redis_client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock
) -> None:
    study = closed_study(redis_client, models_file, data_dir, clock)
    await study.consent(1, "1")
    await study.set_state(StudyState.PAUSED, by="mod")
    with pytest.raises(Refused) as paused:
        await study.check_eligibility(1)
    assert paused.value.code == "paused"
