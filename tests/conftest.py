"""Shared fixtures: real Redis servers (see devstack/redis_servers.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from devstack.redis_servers import RedisServer

# The shared server on this machine, in a db of its own that every test flushes. Override with
# PARLEY_TEST_REDIS_URL (e.g. to give parallel test runs different db numbers).
SHARED_REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of a flushed db on the shared Redis server (fast; nothing persists)."""
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"no Redis at {SHARED_REDIS_URL} ({exc}); start one with "
            "`redis-server --daemonize yes` or set PARLEY_TEST_REDIS_URL"
        )
    client.flushdb()
    yield SHARED_REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start private redis-server processes (AOF by default) that the test may kill and restart."""
    servers: list[RedisServer] = []

    def make(aof: bool = True) -> RedisServer:
        server = RedisServer(dir=tmp_path / f"redis{len(servers)}", aof=aof).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def private_redis(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """One private redis-server with AOF (appendfsync always) in a temp dir."""
    return redis_server_factory()
