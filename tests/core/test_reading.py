"""Reading the whole study in pages: nothing skipped or repeated, even under withdrawal."""

from __future__ import annotations

from bot.core import iter_battle_records
from bot.core.study import Study
from tests.core.helpers import AUDIO, Clock


async def _battles(study: Study, users: range, per_user: int) -> list[str]:
    await study.set_limits("mod", min_seconds_between=0)
    ids = []
    for user in users:
        await study.consent(user, "1")
        for _ in range(per_user):
            ids.append((await study.start_battle(user, AUDIO, 1.0, "ogg")).battle_id)
    return ids


async def test_pages_with_equal_times_yield_each_battle_once(study: Study) -> None:
    # The clock never moves: every battle has the same created_at, the worst case for paging.
    ids = await _battles(study, range(1, 4), per_user=3)
    got = [r["battle_id"] async for r in iter_battle_records(study.redis, batch=2)]
    assert sorted(got) == sorted(ids)


async def test_withdrawal_during_a_read_skips_no_one_else(study: Study, clock: Clock) -> None:
    ids = []
    for user in range(1, 6):
        clock.advance(1)
        ids += await _battles(study, range(user, user + 1), per_user=2)
    leaver_ids = set(ids[:2])  # user 1 started first
    got = []
    async for record in iter_battle_records(study.redis, batch=3):
        got.append(record["battle_id"])
        if len(got) == 3:
            await study.withdraw(1)  # its two battles were the first read: ranks shift by two
    assert sorted(got) == sorted(ids)
    assert leaver_ids <= set(got[:3])
