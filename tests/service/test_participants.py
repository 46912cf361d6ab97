"""Joining, the consent-version rule, demographics and withdrawal through the service."""

from __future__ import annotations

from pathlib import Path

import redis
import redis.asyncio as aioredis

from bot.core import Study
from bot.service import StudyService
from bot.service.outcomes import (
    Agreed,
    ClipMeta,
    ConsentChanged,
    JoinStart,
    Refusal,
    Started,
    Withdrawn,
)
from contract import keys
from contract.modelsfile import ModelsFile
from contract.records import Demographics, Participant, ParticipantStatus
from tests.core.helpers import Clock
from tests.service.conftest import make_service, tone


async def test_join_shows_the_form_until_the_current_version_is_agreed(
    service: StudyService,
    study: Study,
    redis_client: aioredis.Redis,
    rq_conn: redis.Redis,
    models_file: ModelsFile,
    data_dir: Path,
    clock: Clock,
) -> None:
    assert await service.participants.join_start(1) == JoinStart("1", needs_consent=True)
    agreed = await service.participants.agree(1, "1")
    assert isinstance(agreed, Agreed)
    assert agreed.participant.consent_version == "1"
    assert await service.participants.join_start(1) == JoinStart("1", needs_consent=False)
    newer = make_service(
        study, redis_client, rq_conn, models_file, data_dir, clock, consent_version="2"
    )
    assert await newer.participants.join_start(1) == JoinStart("2", needs_consent=True)
    # A form shown before the change no longer counts.
    assert await newer.participants.agree(1, "1") == ConsentChanged("2")
    assert (await study.participant(1)).consent_version == "1"  # type: ignore[union-attr]
    assert isinstance(await newer.participants.agree(1, "2"), Agreed)
    assert await newer.participants.join_start(1) == JoinStart("2", needs_consent=False)


async def test_a_blocked_participant_is_shown_the_form(service: StudyService, study: Study) -> None:
    await study.consent(1, "1")
    await study.block(1, "spam", "mod")
    assert await service.participants.join_start(1) == JoinStart("1", needs_consent=True)


async def test_demographics(service: StudyService, study: Study) -> None:
    refused = await service.participants.tell_about_you(1, Demographics(country="NZ"))
    assert isinstance(refused, Refusal)
    await service.participants.agree(1, "1")
    saved = await service.participants.tell_about_you(1, Demographics(country="NZ"))
    assert isinstance(saved, Participant)
    assert saved.demographics.country == "NZ"
    data = await service.participants.my_data(1)
    assert data["participant"]["demographics"]["country"] == "NZ"


async def test_withdraw_forgets_the_thread_and_returns_it(
    service: StudyService, study: Study, redis_client: aioredis.Redis, data_dir: Path
) -> None:
    await service.participants.agree(1, "1")
    await service.participants.remember_thread(1, 123456789012345678)
    assert await service.participants.thread_id(1) == 123456789012345678
    data = tone(1.0)
    started = await service.clips.take(1, ClipMeta("c.wav", "audio/wav", len(data)), data)
    assert isinstance(started, Started)
    withdrawn = await service.participants.withdraw(1)
    assert withdrawn == Withdrawn(study.pseudonym(1), 123456789012345678)
    assert await redis_client.get(keys.participant_thread(study.pseudonym(1))) is None
    assert await service.participants.thread_id(1) is None
    participant = await study.participant(1)
    assert participant is not None
    assert participant.status is ParticipantStatus.WITHDRAWN
    assert await study.battle(started.battle.battle_id) is None
    assert not list((data_dir / "audio").iterdir())


async def test_withdraw_without_a_thread(service: StudyService, study: Study) -> None:
    await service.participants.agree(2, "1")
    assert await service.participants.withdraw(2) == Withdrawn(study.pseudonym(2), None)
