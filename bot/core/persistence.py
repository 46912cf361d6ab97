"""Refuse to run a study on a Redis that would lose votes on a restart."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.core.codec import as_text
from contract.records import StorageNotDurable

log = logging.getLogger(__name__)

DURABLE_FSYNC = ("always", "everysec")


async def _config_get(redis: aioredis.Redis, name: str) -> str | None:
    values = await redis.config_get(name)
    # An exact name: at most one pair, named in bytes on our client (decode_responses=False).
    for key, raw in values.items():
        if key is not None and as_text(key) == name:
            return None if raw is None else as_text(raw)
    return None


async def persistence_problems(redis: aioredis.Redis) -> list[str]:
    """What about this server's settings could lose study data; empty when it is durable."""
    try:
        appendonly = await _config_get(redis, "appendonly")
        appendfsync = await _config_get(redis, "appendfsync")
        policy = await _config_get(redis, "maxmemory-policy")
    except ResponseError as exc:
        # Managed Redis services often rename or disable CONFIG; we cannot vouch for them.
        return [f"cannot read the server's persistence settings (CONFIG GET failed: {exc})"]
    problems = []
    if appendonly != "yes":
        problems.append(f"appendonly is {appendonly!r}, needs 'yes' (AOF)")
    if appendfsync not in DURABLE_FSYNC:
        problems.append(f"appendfsync is {appendfsync!r}, needs 'always' or 'everysec'")
    if policy is not None and policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy!r}, needs 'noeviction' (eviction drops data)")
    return problems


async def check_persistence(redis: aioredis.Redis, *, allow_volatile: bool) -> list[str]:
    """Raise StorageNotDurable unless the server is durable or the study is declared throwaway.

    Returns the problems found (empty when durable) so the caller can log them.
    """
    problems = await persistence_problems(redis)
    if problems and not allow_volatile:
        raise StorageNotDurable(
            "refusing to run a study on a Redis that would lose votes on restart: "
            + "; ".join(problems)
            + ". Configure Redis as in docs/data-model.md, or set PARLEY_ALLOW_VOLATILE_REDIS=1 "
            "for a throwaway run (tests, the demo)."
        )
    if problems:
        log.warning("volatile Redis allowed (PARLEY_ALLOW_VOLATILE_REDIS): %s", "; ".join(problems))
    return problems
