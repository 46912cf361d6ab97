"""`python -m bot`: the Discord bot of a Parley study (settings from the environment / `.env`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

import numpy as np
import redis

from bot import metrics as bot_metrics
from bot.core import Study, connect
from bot.discord_app.app import ParleyBot, StartupError, load_consent, point_at
from contract.modelsfile import ModelsFileError, load_models_file
from contract.records import StorageNotDurable
from contract.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bot")


async def run(settings: Settings) -> int:
    point_at(settings.discord_api_base, settings.discord_gateway_url)
    models_file, token = settings.models_file, settings.discord_token
    if models_file is None or token is None:
        raise SettingsError("the bot needs PARLEY_MODELS and DISCORD_TOKEN (see Settings.for_bot)")
    models = load_models_file(models_file)
    consent_text = load_consent(settings)
    redis_client = connect(settings.redis_url)
    rq_conn = redis.Redis.from_url(settings.redis_url)
    study = Study(
        redis_client,
        secret=settings.secret_bytes,
        data_dir=settings.data_dir,
        known_models=models,
        # Pair draws and A/B sides must be unpredictable in a real study: seeded from the OS.
        rng=np.random.default_rng(),
        clock=time.time,
    )
    try:
        await study.check_persistence(allow_volatile=settings.allow_volatile_redis)
    except StorageNotDurable as exc:
        # The core's message says what is wrong and how to fix it.
        log.error("%s", exc)
        return 2
    except redis.RedisError as exc:
        # Host and port only: the URL may hold an ACL user's password.
        where = rq_conn.connection_pool.connection_kwargs
        log.error("cannot reach Redis at %s:%s: %s", where.get("host"), where.get("port"), exc)
        return 2
    metrics = None
    if settings.metrics_port is not None:
        metrics = bot_metrics.start(
            settings.redis_url,
            models.models,
            port=settings.metrics_port,
            addr=settings.metrics_addr,
        )
    bot = ParleyBot(
        settings=settings,
        study=study,
        models=models,
        redis_client=redis_client,
        rq_conn=rq_conn,
        consent_text=consent_text,
    )
    loop = asyncio.get_running_loop()
    # SIGTERM (honcho, systemd, tests) closes the gateway cleanly instead of killing mid-edit.
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(bot.close()))
    try:
        async with bot:
            await bot.start(token.get_secret_value())
    finally:
        if metrics is not None:
            metrics.stop()
        await redis_client.aclose()
        rq_conn.close()
    return 0


def main() -> int:
    try:
        settings = load_settings().for_bot()
    except SettingsError as exc:
        print(f"parley bot: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(run(settings))
    except (ModelsFileError, StartupError, SettingsError) as exc:
        # Bad models file or consent text: say what is wrong, no traceback.
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
