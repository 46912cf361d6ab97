"""The Redis client the core expects: bytes replies and a bounded, blocking connection pool.

A bounded pool that waits for a free connection (rather than failing with MaxConnectionsError)
lets a burst of clicks queue for a moment instead of refusing votes.
"""

from __future__ import annotations

import redis.asyncio as aioredis

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 20.0


def connect(
    url: str, *, max_connections: int = MAX_CONNECTIONS, timeout: float = POOL_TIMEOUT_S
) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, decode_responses=False
    )
    return aioredis.Redis(connection_pool=pool)
