"""`/study replies` through the service: refused without a voice, and a spoken battle's jobs ask
the workers to speak."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import redis
from rq.job import Job

from bot.core import Study
from bot.service import StudyService
from bot.service.outcomes import ClipMeta, Refusal, Started
from contract.modelsfile import TtsSpec
from contract.records import ReplyMode, StudyConfig
from tests.service.conftest import make_service, tone

MOD = 9999


async def test_spoken_replies_need_a_tts_table(service: StudyService, study: Study) -> None:
    refusal = await service.moderation.set_replies(ReplyMode.SPEECH, MOD)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "no_tts"
    assert "[tts]" in refusal.message
    assert (await study.config()).replies is ReplyMode.TEXT
    # Text needs no voice.
    config = await service.moderation.set_replies(ReplyMode.TEXT, MOD)
    assert isinstance(config, StudyConfig)


async def test_a_spoken_battle_asks_both_jobs_to_speak(
    service: StudyService,
    study: Study,
    rq_conn: redis.Redis,
    data_dir: Path,
) -> None:
    deps = service.moderation.deps
    voiced = dataclasses.replace(deps.models, tts=TtsSpec("espeak_ng", {}))
    spoken = make_service(
        study,
        deps.redis,
        rq_conn,
        voiced,
        data_dir,
        deps.clock,  # type: ignore[arg-type]
    )
    config = await spoken.moderation.set_replies(ReplyMode.BOTH, MOD)
    assert isinstance(config, StudyConfig)
    assert config.replies is ReplyMode.BOTH
    await study.consent(1, "1")
    data = tone(2.0)
    outcome = await spoken.clips.take(1, ClipMeta("clip.wav", "audio/wav", len(data)), data)
    assert isinstance(outcome, Started)
    assert outcome.battle.reply_mode is ReplyMode.BOTH
    for job in Job.fetch_many(outcome.job_ids, connection=rq_conn):
        assert job is not None
        assert job.args[0]["speak"] is True
