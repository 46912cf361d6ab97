"""`python -m workers --models FILE [--serve id,id]`: a worker for the models it serves.

Settings come from the environment / `.env` (contract.settings): REDIS_URL, PARLEY_MODELS (unless
--models is given), PARLEY_JOB_TIMEOUT, PARLEY_LOG_LEVEL, PARLEY_METRICS_PORT / PARLEY_METRICS_ADDR.
See docs/workers.md.
"""

from __future__ import annotations

import argparse
import logging
import sys

import redis

from contract.modelsfile import ModelsFileError, load_models_file
from contract.settings import SettingsError, load_settings
from workers.backends.base import BackendError
from workers.worker import serve


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--models", help="models file (TOML); default: $PARLEY_MODELS")
    parser.add_argument(
        "--serve",
        help="comma-separated model ids this worker loads and serves (default: every model)",
    )
    parser.add_argument("--redis-url", help="default: $REDIS_URL")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--no-warmup", action="store_true", help="skip each model's warm-up")
    parser.add_argument(
        "--with-scheduler",
        action="store_true",
        help="also run RQ's scheduler (needed only for retries enqueued with an interval)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="jobs kept in flight at once (default 1). API models (vLLM, OpenAI, Gemini) answer "
        "them side by side; an in-process model answers its jobs one at a time",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus /metrics on this port (default: $PARLEY_METRICS_PORT; off)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {args.concurrency}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        overrides: dict[str, object] = {}
        if args.models:
            overrides["PARLEY_MODELS"] = args.models
        if args.redis_url:
            overrides["REDIS_URL"] = args.redis_url
        if args.metrics_port is not None:
            overrides["PARLEY_METRICS_PORT"] = args.metrics_port
        settings = load_settings(**overrides).for_worker()
        models_file = load_models_file(settings.models_file or "")
    except (SettingsError, ModelsFileError) as exc:
        print(f"python -m workers: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ids = args.serve.split(",") if args.serve else None
    connection = redis.Redis.from_url(settings.redis_url)
    try:
        # Before loading models (minutes on a GPU host), not after.
        connection.ping()
    except redis.exceptions.RedisError as exc:
        where = connection.connection_pool.connection_kwargs
        # Host and port only: the URL may hold a password.
        print(
            f"python -m workers: cannot reach Redis at {where.get('host')}:{where.get('port')} "
            f"(REDIS_URL): {exc}",
            file=sys.stderr,
        )
        connection.close()
        return 2
    try:
        serve(
            models_file,
            ids,
            connection,
            job_timeout_s=settings.job_timeout_s,
            burst=args.burst,
            warmup=not args.no_warmup,
            with_scheduler=args.with_scheduler,
            log_level=settings.log_level,
            concurrency=args.concurrency,
            metrics_port=settings.metrics_port,
            metrics_addr=settings.metrics_addr,
        )
    except (ValueError, BackendError) as exc:
        # Bad model ids or settings, a missing API key, a model the server lacks: all named.
        print(f"python -m workers: {exc}", file=sys.stderr)
        return 2
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
