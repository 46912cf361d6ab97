"""Shared fixtures: real Redis servers (see devstack/redis_servers.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache
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


# -- tests that need CUDA (marker `gpu`) -----------------------------------------------------
# Without a CUDA device they are deselected, never skipped silently: the run's summary says how
# many and why. scripts/gpu_check.sh runs them on a GPU host.


@cache
def cuda_missing_reason() -> str | None:
    """Why the gpu tests cannot run here; None when a CUDA device is usable."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"no CUDA device (torch {torch.__version__}: torch.cuda.is_available() is False)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu:
        return
    reason = cuda_missing_reason()
    if reason is None:
        return
    items[:] = [item for item in items if item.get_closest_marker("gpu") is None]
    config.hook.pytest_deselected(items=gpu)
    config.stash[_GPU_DESELECTED] = (len(gpu), reason)


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    found = config.stash.get(_GPU_DESELECTED, None)
    if found is None:
        return None
    return f"deselected {found[0]} gpu test(s): {found[1]}; run scripts/gpu_check.sh on a GPU host"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = terminalreporter.config.stash.get(_GPU_DESELECTED, None)
    if found is not None:
        terminalreporter.write_line(
            f"gpu tests: {found[0]} deselected ({found[1]}); they run in scripts/gpu_check.sh",
            yellow=True,
        )


_GPU_DESELECTED = pytest.StashKey[tuple[int, str]]()
