"""Participants against a real Redis: pseudonyms, consent, demographics, blocking, my_data."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import redis.asyncio as aioredis

from bot.core import Demographics, ParticipantStatus, Refused, Study
from contract import keys
from tests.core.helpers import SECRET, T0, Clock


def test_pseudonym_is_hmac_of_the_discord_id(study: Study) -> None:
    expected = hmac.new(SECRET, b"123456789012345678", hashlib.sha256).hexdigest()[:16]
    assert study.pseudonym(123456789012345678) == expected
    assert study.pseudonym(1) != study.pseudonym(2)


@pytest.mark.parametrize("bad", [0, -5, "123", True, 1.5])
def test_pseudonym_refuses_bad_ids(study: Study, bad: object) -> None:
    with pytest.raises(ValueError, match="discord_id"):
        study.pseudonym(bad)  # type: ignore[arg-type]


async def test_consent_records_version_and_time_and_is_idempotent(
    study: Study, clock: Clock, redis_client: aioredis.Redis
) -> None:
    assert await study.participant(42) is None
    p = await study.consent(42, "1")
    assert p.pseudonym == study.pseudonym(42)
    assert (p.consent_version, p.consented_at, p.joined_at) == ("1", T0, T0)
    assert p.status is ParticipantStatus.ACTIVE
    clock.advance(60)
    again = await study.consent(42, "1")
    assert again == p  # same version: nothing changes, the first time stands
    assert await redis_client.xlen(keys.EVENTS) == 1
    newer = await study.consent(42, "2")
    assert (newer.consent_version, newer.consented_at, newer.joined_at) == ("2", T0 + 60, T0)


async def test_demographics_are_optional_and_need_consent(study: Study) -> None:
    with pytest.raises(Refused) as info:
        await study.set_demographics(7, Demographics(age_band="25-34"))
    assert info.value.code == "no_consent"
    await study.consent(7, "1")
    p = await study.set_demographics(7, Demographics(age_band="25-34", country="  "))
    assert p.demographics == Demographics(age_band="25-34")
    p = await study.set_demographics(7, Demographics(gender="f", first_language="nl"))
    assert p.demographics == Demographics(gender="f", first_language="nl")
    with pytest.raises(ValueError, match=r"demographics\.country"):
        await study.set_demographics(7, Demographics(country="x" * 65))


async def test_block_and_unblock(study: Study) -> None:
    await study.consent(9, "1")
    p = await study.block(9, "spam", by="mod1")
    assert (p.status, p.blocked_reason) == (ParticipantStatus.BLOCKED, "spam")
    with pytest.raises(Refused) as info:
        await study.check_eligibility(9)
    assert info.value.code == "blocked"
    p = await study.unblock(9, by="mod1")
    assert (p.status, p.blocked_reason) == (ParticipantStatus.ACTIVE, None)
    await study.check_eligibility(9)


async def test_events_name_the_pseudonym_never_the_discord_id(
    study: Study, redis_client: aioredis.Redis
) -> None:
    await study.consent(987654321987654321, "1")
    await study.block(987654321987654321, "test", by="mod")
    for _, fields in await redis_client.xrange(keys.EVENTS):
        assert b"987654321987654321" not in fields[b"data"]
        assert json.loads(fields[b"data"])["participant"] == study.pseudonym(987654321987654321)


async def test_my_data_is_json_able(study: Study) -> None:
    assert await study.my_data(5) == {"participant": None, "battles": []}
    await study.consent(5, "1")
    data = await study.my_data(5)
    json.dumps(data)
    assert data["participant"]["consent_version"] == "1"
