"""The study at a glance for moderators: battles by status, per pair and per model."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from contract import keys
from contract.records import StudyConfig


async def summary(redis: aioredis.Redis, config: StudyConfig) -> dict[str, Any]:
    """Battles by status, battles and votes per pair and per model; JSON-able."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.STATUS_COUNTS)
        pipe.hgetall(keys.PAIR_BATTLES)
        pipe.hgetall(keys.PAIR_VOTES)
        pipe.scard(keys.PARTICIPANTS)
        by_status, pair_battles, pair_votes, n_participants = await pipe.execute()

    pairs_b, pairs_v = _counts(pair_battles), _counts(pair_votes)
    models: dict[str, dict[str, int]] = {}
    for table, name in ((pairs_b, "battles"), (pairs_v, "votes")):
        for pair, n in table.items():
            for model in keys.split_pair(pair):
                models.setdefault(model, {"battles": 0, "votes": 0})[name] += n
    return {
        "state": config.state.value,
        "strategy": config.strategy.value,
        "roster": list(config.roster),
        "participants": n_participants,
        "battles_by_status": _counts(by_status),
        "battles_per_pair": pairs_b,
        "votes_per_pair": pairs_v,
        "per_model": dict(sorted(models.items())),
    }


def _counts(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in sorted(raw.items()) if int(v)}
