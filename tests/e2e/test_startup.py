"""`python -m bot` refuses to start, clearly and without a traceback, when it must not run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.harness import MODERATOR_ROLE, REPO, SECRET, STUDY_CHANNEL
from devstack.redis_servers import RedisServer
from devstack.standin.server import StandIn
from devstack.standin.state import EVERYONE_PERMISSIONS

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


async def run_bot_on(
    standin: StandIn, redis_url: str, tmp_path: Path, **env: str
) -> tuple[int, str]:
    """`python -m bot` against the stand-in (on this loop, so it must keep serving)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "DISCORD_"))}
    full = {
        **base,
        "PYTHONPATH": str(REPO),
        **good_env(redis_url),
        "DISCORD_TOKEN": standin.token,
        "DISCORD_API_BASE": standin.api_base,
        "DISCORD_GATEWAY_URL": standin.gateway_url,
        "PARLEY_GUILD_ID": standin.guild_id,
        "PARLEY_MODERATOR_ROLE": MODERATOR_ROLE,
        "PARLEY_STUDY_CHANNEL": STUDY_CHANNEL,
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return int(process.returncode or 0), out.decode(errors="replace")


@pytest.mark.asyncio
async def test_a_wrong_server_setup_is_named_setting_by_setting(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> None:
    durable = redis_server_factory()
    standin = StandIn()
    await standin.start()
    try:
        code, log = await run_bot_on(
            standin,
            durable.url,
            tmp_path,
            PARLEY_MODERATOR_ROLE="Ghost moderators",
            PARLEY_STUDY_CHANNEL="nowhere",
        )
        assert code == 2
        assert "PARLEY_MODERATOR_ROLE='Ghost moderators': no role" in log
        assert "Study moderator" in log, "the roles it does have are listed"
        assert "PARLEY_STUDY_CHANNEL='nowhere': no text channel" in log
        assert "Traceback" not in log

        # The right names, but the bot's role lacks what the study channel needs.
        standin.world.set_bot_permissions(EVERYONE_PERMISSIONS)
        code, log = await run_bot_on(standin, durable.url, tmp_path)
        assert code == 2
        assert "PARLEY_STUDY_CHANNEL='study': the bot lacks the permissions" in log
        assert "create_private_threads" in log
        assert "PARLEY_MODERATOR_ROLE" not in log
        assert "Traceback" not in log
        assert not standin.world.commands, "it stopped before registering any command"
    finally:
        await standin.stop()
