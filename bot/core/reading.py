"""Reading the whole study in batches: battles for the export, participants for their table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import redis.asyncio as aioredis

from bot.core.codec import as_text, battle_from_hash, decode_hash, participant_from_hash
from bot.core.scripts import ReadBattles, Scripts
from contract import keys
from contract.pairing import PairOutcome
from contract.records import Battle, Participant


async def iter_battle_records(
    redis: aioredis.Redis, batch: int = 1000
) -> AsyncIterator[dict[str, str]]:
    """Every stored battle record (field -> text), oldest first, one script call per batch.

    The export reads these directly: 100,000s of battles, where building a Battle for each
    would cost seconds. A battle deleted while we read (withdrawal) is skipped.
    """
    scripts = Scripts(redis)
    # Resume after the last score seen, skipping the battles already read at that very score.
    score: str | float = "-inf"
    offset = 0
    while True:
        rows = await scripts.run(ReadBattles(min_score=score, offset=offset, count=batch))
        if not rows:
            return
        for _, _, record in rows:
            if record:  # JSON gave text already
                yield dict(zip(record[0::2], record[1::2], strict=True))
        last = rows[-1][1]
        same = sum(1 for _, s, _ in rows if s == last)
        offset = offset + same if last == score else same
        score = last


async def iter_battles(redis: aioredis.Redis, batch: int = 1000) -> AsyncIterator[Battle]:
    """Every battle, oldest first."""
    async for record in iter_battle_records(redis, batch=batch):
        yield battle_from_hash(record)


async def read_battles(redis: aioredis.Redis, battle_ids: Sequence[str]) -> list[Battle]:
    """These battles, in one round trip; a battle deleted meanwhile (withdrawal) is left out."""
    async with redis.pipeline(transaction=False) as pipe:
        for battle_id in battle_ids:
            pipe.hgetall(keys.battle(battle_id))
        raws = await pipe.execute()
    return [battle_from_hash(decode_hash(raw)) for raw in raws if raw]


async def iter_participants(redis: aioredis.Redis, batch: int = 1000) -> AsyncIterator[Participant]:
    cursor = 0
    while True:
        cursor, members = await redis.sscan(keys.PARTICIPANTS, cursor=cursor, count=batch)
        if members:
            async with redis.pipeline(transaction=False) as pipe:
                for p in sorted(members):
                    pipe.hgetall(keys.participant(as_text(p)))
                raws = await pipe.execute()
            for raw in raws:
                if raw:
                    yield participant_from_hash(decode_hash(raw))
        if cursor == 0:
            return


async def read_outcomes(redis: aioredis.Redis) -> dict[str, PairOutcome]:
    """The running tally of decided votes per pair (`keys.PAIR_OUTCOMES`), for `active` pairing
    and the votes still needed; pairs with no vote are absent."""
    tally: dict[str, dict[str, int]] = {}
    for raw_field, raw_count in (await redis.hgetall(keys.PAIR_OUTCOMES)).items():
        pair, _, side = as_text(raw_field).rpartition(":")
        if side not in keys.OUTCOME_SIDES or not pair:
            raise ValueError(f"unreadable field {raw_field!r} in {keys.PAIR_OUTCOMES}")
        tally.setdefault(pair, {})[side] = int(raw_count)
    return {
        pair: PairOutcome(t.get("low", 0), t.get("high", 0), t.get("tie", 0))
        for pair, t in tally.items()
        if any(t.values())
    }
