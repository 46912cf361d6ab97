"""The Redis client the core expects: bytes replies and a bounded, blocking connection pool.

A bounded pool that waits for a free connection (rather than failing with MaxConnectionsError)
lets a burst of clicks queue for a moment instead of refusing votes.

After Redis restarts, every pooled connection is dead, and a pool built from a URL retries
nothing: the first command on each would fail ("Connection closed by server") and a participant
would be told the storage is down although it is back. A PING before a command on a connection
idle for `HEALTH_CHECK_S`, and one immediate retry after a connection error, reconnect instead
(tests/reliability/test_faults_redis.py).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 20.0
HEALTH_CHECK_S = 1.0


def connect(
    url: str, *, max_connections: int = MAX_CONNECTIONS, timeout: float = POOL_TIMEOUT_S
) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        decode_responses=False,
        health_check_interval=HEALTH_CHECK_S,
        retry=Retry(NoBackoff(), 1),
    )
    return aioredis.Redis(connection_pool=pool)
