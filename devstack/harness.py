"""The whole Parley stack on one machine, for end-to-end tests, the demo and reliability tests.

    stack = Stack(workdir)                       # e2e models served by a local fake OpenAI API
    await stack.start()                          # redis, stand-in, fake API, bot, worker
    alice = await stack.standin.add_member("alice")
    ...
    await stack.restart_bot()
    await stack.stop()

The stand-in runs on the caller's event loop (so tests drive it directly); Redis, the bot
(`python -m bot`) and the worker (`python -m workers`) are real separate processes configured
only through environment variables, as in production. Their output goes to log files under
`workdir` (`stack.bot_log()`, `stack.worker_log()`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis

from bot.core import Study, StudyState, connect
from contract import heartbeat
from contract.modelsfile import load_models_file
from devstack.fake_apis import FakeApiServer
from devstack.redis_servers import RedisServer
from devstack.standin.server import StandIn

REPO = Path(__file__).resolve().parents[1]
SECRET = "e2e-secret-0123456789abcdef"
MODERATOR_ROLE = "Study moderator"
STUDY_CHANNEL = "study"

# The e2e models: all `openai_compatible`, served by the fake OpenAI server; "broken" fails.
E2E_MODELS = {
    "alpha": ("Alpha Voice", "e2e-alpha"),
    "beta": ("Beta Speech", "e2e-beta"),
    "broken": ("Broken Model", "e2e-broken"),
}


# The study voice of a stack with `tts=True`: OpenAI's speech API on the same fake server.
E2E_TTS = {"model": "gpt-4o-mini-tts", "voice": "alloy"}


def e2e_models_toml(base_url: str, *, tts: bool = False) -> str:
    parts = []
    if tts:
        parts.append(
            f'[tts]\nbackend = "openai_speech"\nbase_url = "{base_url}"\n'
            f'model = "{E2E_TTS["model"]}"\nvoice = "{E2E_TTS["voice"]}"\napi_key_env = ""\n'
        )
    for model_id, (display, served) in E2E_MODELS.items():
        parts.append(
            f'[models.{model_id}]\ndisplay_name = "{display}"\nbackend = "openai_compatible"\n'
            f'[models.{model_id}.settings]\nbase_url = "{base_url}"\nmodel = "{served}"\n'
        )
    return "\n".join(parts)


@dataclass
class ManagedProcess:
    """A child process with its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = False, timeout: float = 15.0) -> int | None:
        """SIGTERM (or SIGKILL, as a crash) and wait; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        code = self.process.returncode
        self.process = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    workdir: Path
    # None: write the e2e models file (fake OpenAI API). Else e.g. examples/models.demo.toml.
    models_file: Path | None = None
    worker_args: list[str] = field(default_factory=lambda: ["--no-warmup"])
    extra_env: dict[str, str] = field(default_factory=dict)
    start_worker_at_start: bool = True
    # With the e2e models: a [tts] table (openai_speech on the fake server) for spoken replies.
    tts: bool = False
    # A real study starts closed until a moderator runs `/study open`; most tests are about a
    # study that runs, so the stack creates it open (roster: the whole models file). False:
    # closed, as in production (the demo and the tests of the closed start).
    open_at_start: bool = True

    redis_server: RedisServer | None = None
    standin: StandIn = field(default_factory=StandIn)
    fake_api: FakeApiServer | None = None
    bot: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    _identifies: int = 0

    # -- whole stack ------------------------------------------------------------------------

    async def start(self, *, timeout: float = 60.0) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # AOF on, as a real study must have: the bot's durability check passes without flags.
        self.redis_server = RedisServer(dir=self.workdir / "redis", aof=True).start()
        await self.standin.start()
        if self.models_file is None:
            self.fake_api = FakeApiServer(
                api_key=None,
                models=tuple(served for _, served in E2E_MODELS.values()),
                words_per_chunk=2,
            ).start()
            self.fake_api.broken_models.add(E2E_MODELS["broken"][1])
            self.models_file = self.workdir / "models.e2e.toml"
            self.models_file.write_text(
                e2e_models_toml(self.fake_api.openai_url, tts=self.tts), "utf-8"
            )
        if self.open_at_start:
            await self._create_open_study()
        await self.start_bot(timeout=timeout)
        if self.start_worker_at_start:
            await self.start_worker(timeout=timeout)
        return self

    async def stop(self) -> None:
        # In threads: the stand-in (on this loop) must keep serving while the bot closes.
        await self.stop_bot()
        await self.stop_worker()
        await self.standin.stop()
        if self.fake_api is not None:
            self.fake_api.stop()
            self.fake_api = None
        if self.redis_server is not None:
            self.redis_server.stop()

    async def __aenter__(self) -> Stack:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- settings -----------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        if self.redis_server is None:
            raise RuntimeError("the stack is not started")
        return self.redis_server.url

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def env(self) -> dict[str, str]:
        """The environment of the bot and the worker: only the variables of docs/interfaces.md."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PARLEY_", "DISCORD_", "REDIS_"))
        }
        env.update(
            {
                "DISCORD_TOKEN": self.standin.token,
                "DISCORD_API_BASE": self.standin.api_base,
                "DISCORD_GATEWAY_URL": self.standin.gateway_url,
                "REDIS_URL": self.redis_url,
                "PARLEY_MODELS": str(self.models_file),
                "PARLEY_DATA_DIR": str(self.data_dir),
                "PARLEY_SECRET": SECRET,
                "PARLEY_GUILD_ID": self.standin.guild_id,
                "PARLEY_MODERATOR_ROLE": MODERATOR_ROLE,
                "PARLEY_STUDY_CHANNEL": STUDY_CHANNEL,
                "PARLEY_LOG_LEVEL": "INFO",
                "PARLEY_JOB_TIMEOUT": "60",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    async def _create_open_study(self) -> None:
        """The study's first config, open, written by the core before the bot starts."""
        if self.models_file is None:
            raise RuntimeError("the stack has no models file yet")
        client = connect(self.redis_url)
        try:
            study = Study(
                client,
                secret=self.env()["PARLEY_SECRET"].encode(),
                data_dir=self.data_dir,
                known_models=load_models_file(self.models_file),
                rng=np.random.default_rng(0),
                initial_state=StudyState.OPEN,
            )
            await study.config()
        finally:
            await client.aclose()

    # -- the bot ------------------------------------------------------------------------------

    async def start_bot(self, *, timeout: float = 60.0) -> ManagedProcess:
        if self.bot is not None and self.bot.running:
            raise RuntimeError("the bot is already running")
        self.bot = ManagedProcess(
            "bot",
            [sys.executable, "-m", "bot"],
            self.env(),
            self.workdir / "bot.log",
        ).start()
        self._identifies += 1
        await self._wait_gateway(timeout)
        return self.bot

    async def _wait_gateway(self, timeout: float) -> None:
        waiter = asyncio.ensure_future(
            self.standin.gateway.wait_connected(identifies=self._identifies, timeout=timeout)
        )
        # Fail at once if the bot exits instead of connecting (bad settings, Redis refused).
        while not waiter.done():
            if self.bot is None or not self.bot.running:
                waiter.cancel()
                raise RuntimeError(f"the bot exited before connecting:\n{self.bot_log()[-3000:]}")
            await asyncio.sleep(0.05)
        waiter.result()

    async def wait_reidentify(self, *, timeout: float = 30.0) -> None:
        """Wait for the running bot to IDENTIFY again (after an INVALID_SESSION)."""
        self._identifies += 1
        await self._wait_gateway(timeout)

    async def stop_bot(self, *, kill: bool = False) -> int | None:
        if self.bot is None:
            return None
        # The stand-in must keep serving while the bot closes its gateway.
        return await asyncio.to_thread(self.bot.stop, kill=kill)

    async def restart_bot(self, *, kill: bool = False, timeout: float = 60.0) -> None:
        await self.stop_bot(kill=kill)
        await self.start_bot(timeout=timeout)

    def bot_log(self) -> str:
        return self.bot.log() if self.bot is not None else ""

    # -- the worker ---------------------------------------------------------------------------

    async def start_worker(self, *, timeout: float = 60.0) -> ManagedProcess:
        self.worker = ManagedProcess(
            "worker",
            [sys.executable, "-m", "workers", "--models", str(self.models_file), *self.worker_args],
            self.env(),
            self.workdir / "worker.log",
        ).start()
        started = time.time()
        client = self.redis_client()
        try:
            while True:
                if not self.worker.running:
                    raise RuntimeError(f"the worker exited at start:\n{self.worker_log()[-3000:]}")
                if any(w.heartbeat_at >= started - 1 for w in heartbeat.live_workers(client)):
                    return self.worker
                if time.time() - started > timeout:
                    raise TimeoutError(f"no worker heartbeat in {timeout} s:\n{self.worker_log()}")
                await asyncio.sleep(0.1)
        finally:
            client.close()

    async def stop_worker(self, *, kill: bool = False) -> None:
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop, kill=kill)

    def worker_log(self) -> str:
        return self.worker.log() if self.worker is not None else ""
