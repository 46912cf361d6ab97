"""Queue + worker overhead per job, and parallel battles across two workers.

Runs everything locally: a private redis-server, a fake OpenAI-compatible model server (the
model's time is known and taken out), and real `python -m workers` processes. Prints:

1. overhead per job: enqueue -> result readable on the results stream, minus the model's own
   time (the backend's measured request time); median and p90 over sequential jobs.
   Target: median <= 50 ms on the 2-core dev machine.
2. battles: the two sides of a battle enqueued together, with a model that takes MODEL_S each.
   Two workers (one per model): battle time ~ max(a, b). One worker serving both: ~ a + b.

    .venv/bin/python benchmarks/bench_queue.py [--jobs 60] [--battles 8] [--model-s 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from devstack.clips import encode, speak
from devstack.fake_apis import FakeApiServer
from devstack.queue_client import Bot, wait_workers
from devstack.redis_servers import RedisServer

REPO = Path(__file__).resolve().parents[1]

MODELS = """
[models.model-a]
backend = "openai_compatible"
[models.model-a.settings]
model = "audio-a"
base_url = "{url}"
stream = false

[models.model-b]
backend = "openai_compatible"
[models.model-b.settings]
model = "audio-b"
base_url = "{url}"
stream = false
"""


def start_worker(redis_url: str, models: Path, serve: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url, "PARLEY_MODELS": str(models)}
    env["PARLEY_LOG_LEVEL"] = "WARNING"
    return subprocess.Popen([sys.executable, "-m", "workers", "--serve", serve], cwd=REPO, env=env)


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(30)


def battles(bot: Bot, clip: bytes, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        bot.enqueue("model-a", clip, "a")
        bot.enqueue("model-b", clip, "b")
        bot.next_results(2)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--battles", type=int, default=8)
    parser.add_argument("--model-s", type=float, default=0.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server = RedisServer(dir=tmp / "redis", aof=False).start()
        fake = FakeApiServer(api_key=None, models=("audio-a", "audio-b")).start()
        workers: list[subprocess.Popen[bytes]] = []
        client = redis.Redis.from_url(server.url)
        try:
            wav = speak("Hello, what is the capital of France?", tmp / "q.wav")
            clip = encode(wav, "ogg", "libopus", 48_000)
            models = tmp / "models.toml"
            models.write_text(MODELS.format(url=fake.openai_url))
            workers = [
                start_worker(server.url, models, "model-a"),
                start_worker(server.url, models, "model-b"),
            ]
            wait_workers(client, 2)
            bot = Bot(client)

            # 1. Overhead: sequential jobs on one model, model time taken out.
            for _ in range(5):  # warm the connections
                bot.enqueue("model-a", clip)
                bot.next_results(1)
            overheads, decode, model = [], [], []
            for _ in range(args.jobs):
                started = time.perf_counter()
                bot.enqueue("model-a", clip)
                (result,) = bot.next_results(1)
                elapsed = time.perf_counter() - started
                overheads.append(elapsed - result.timings["model"])
                decode.append(result.timings["decode_audio"])
                model.append(result.timings["model"])
            ms = sorted(1000 * o for o in overheads)
            print(f"clip: {len(clip)} bytes ogg/opus, 2.4 s of speech")
            print(
                f"overhead per job (enqueue -> result on stream, minus model time), "
                f"{args.jobs} jobs: median {statistics.median(ms):.1f} ms, "
                f"p90 {ms[int(0.9 * len(ms))]:.1f} ms, max {ms[-1]:.1f} ms"
            )
            print(
                f"  of which decode+normalise: median {1000 * statistics.median(decode):.1f} ms; "
                f"model (fake server request): median {1000 * statistics.median(model):.1f} ms"
            )

            # 2. Battles: two workers in parallel vs one worker serving both.
            fake.slow_models.update({"audio-a": args.model_s, "audio-b": args.model_s})
            parallel = battles(bot, clip, args.battles)
            stop(workers)
            workers = [start_worker(server.url, models, "model-a,model-b")]
            wait_workers(client, 1)
            serial = battles(bot, clip, args.battles)
            print(
                f"battle, each model {args.model_s:.2f} s: two workers median "
                f"{statistics.median(parallel):.3f} s (~max), one worker for both median "
                f"{statistics.median(serial):.3f} s (~sum)"
            )
        finally:
            stop(workers)
            client.close()
            fake.stop()
            server.stop()


if __name__ == "__main__":
    main()
