"""`python -m bot` refuses to start, clearly and without a traceback, when it must not run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.harness import REPO, SECRET
from devstack.redis_servers import RedisServer

pytestmark = pytest.mark.e2e


def run_bot(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "DISCORD_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env here
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def good_env(redis_url: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": "unused",
        "PARLEY_SECRET": SECRET,
        "PARLEY_GUILD_ID": "1",
        "PARLEY_MODELS": str(REPO / "examples" / "models.demo.toml"),
        "REDIS_URL": redis_url,
        # Nothing listens here: the bot must stop before it ever talks to Discord.
        "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",
    }


def test_missing_settings_are_named(tmp_path: Path) -> None:
    done = run_bot({}, tmp_path)
    assert done.returncode == 2
    assert "DISCORD_TOKEN" in done.stderr
    assert "PARLEY_SECRET" in done.stderr
    assert "Traceback" not in done.stderr


def test_volatile_redis_is_refused(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> None:
    volatile = redis_server_factory(aof=False)
    done = run_bot(good_env(volatile.url), tmp_path)
    assert done.returncode == 2
    assert "appendonly" in done.stderr
    assert "PARLEY_ALLOW_VOLATILE_REDIS" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_consent_version_is_refused(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> None:
    durable = redis_server_factory()
    done = run_bot({**good_env(durable.url), "PARLEY_CONSENT_VERSION": "v 2!"}, tmp_path)
    assert done.returncode == 2
    assert "PARLEY_CONSENT_VERSION" in done.stderr
    assert "Traceback" not in done.stderr
