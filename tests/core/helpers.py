"""Helpers of the study-core tests: constants, a settable clock, worker results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import redis.asyncio as aioredis

from bot.core import Battle, Study, StudyState
from contract.modelsfile import ModelsFile
from contract.protocol import ResultMessage

SECRET = b"test-secret-0123456789"
MODELS_TOML = """
[models.alpha]
display_name = "Alpha"
backend = "openai_compatible"
[models.beta]
display_name = "Beta"
backend = "openai_compatible"
[models.gamma]
display_name = "Gamma"
backend = "openai_compatible"
[models.delta]
display_name = "Delta"
backend = "openai_compatible"
"""
# 2026-11-27 12:00:00 UTC: midday, so a test can advance hours without crossing midnight.
T0 = 1_795_780_800.0
AUDIO = b"OggS" + bytes(range(256)) * 4


class Clock:
    """A clock the test moves by hand; the study reads it through `clock=`."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make_study(
    client: aioredis.Redis, models_file: ModelsFile, data_dir: Path, clock: Clock, seed: int = 7
) -> Study:
    return Study(
        client,
        secret=SECRET,
        data_dir=data_dir,
        known_models=models_file,
        rng=np.random.default_rng(seed),
        clock=clock,
        # The core's tests are about a study that runs; tests/core/test_study_state.py starts
        # one closed, as production does.
        initial_state=StudyState.OPEN,
    )


def result_for(
    battle: Battle, side: str, *, error: str | None = None, reply: str = "hi"
) -> ResultMessage:
    """The ResultMessage a worker would publish for one side of a battle."""
    model = battle.model_a if side == "a" else battle.model_b
    return ResultMessage(
        battle_id=battle.battle_id,
        side=side,
        model_id=model,
        reply=None if error else f"{reply} on side {side}",  # names no model: the guard keeps it
        transcript=None if error else "what is the weather",
        timings={"total": 1.5, "first_token": 0.4},
        error=error,
        error_kind="permanent" if error else None,
        job_id=f"job-{side}",
        worker="w1",
        finished_at=T0,
    )


async def answered_battle(study: Study, clock: Clock, user: int = 1001) -> Battle:
    """A consented participant's battle with both replies in, ready for a vote."""
    await study.consent(user, "1")
    battle = await study.start_battle(user, AUDIO, 3.0, "ogg")
    clock.advance(2)
    await study.record_reply(result_for(battle, "a"))
    battle, _ = await study.record_reply(result_for(battle, "b"))
    return battle
