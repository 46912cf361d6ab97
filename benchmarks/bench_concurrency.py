"""One battle vs. N battles at once, through Parley's worker (`--concurrency`) and the
openai_compatible backend: what a batching server (vLLM) buys.

    python benchmarks/bench_concurrency.py                          # local fake, 1 s per answer
    python benchmarks/bench_concurrency.py --base-url http://127.0.0.1:8000/v1 \\
        --model Qwen/Qwen2-Audio-7B-Instruct --audio-part audio_url --battles 16

A private redis-server and one `python -m workers --concurrency 2N` process; both sides of each
battle go to the same served model (as `side-a` / `side-b`). It times one battle alone (median
of `--runs`), then N battles enqueued at once (enqueue -> last reply), and prints the ratio.
Goal (issue 15, vLLM on one GPU): N = 16 within 1.5x one battle's latency. Against the fake
server (fixed latency, answers in parallel) the ratio shows Parley's own overhead.
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

MODEL_ENTRY = """
[models.{id}]
backend = "openai_compatible"
[models.{id}.settings]
model = "{model}"
base_url = "{url}"
audio_part = "{audio_part}"
max_new_tokens = {max_tokens}
temperature = 0.0
timeout_s = 300
retries = 0
"""


def battle_times(bot: Bot, clip: bytes, battles: int) -> float:
    """Enqueue `battles` battles at once; seconds until every reply is on the stream."""
    started = time.perf_counter()
    for _ in range(battles):
        bot.enqueue("side-a", clip, "a")
        bot.enqueue("side-b", clip, "b")
    bot.next_results(2 * battles, timeout_s=600)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: a local fake)")
    parser.add_argument("--model", default="audio-model", help="the served model name")
    parser.add_argument("--audio-part", default="input_audio", choices=["input_audio", "audio_url"])
    parser.add_argument("--battles", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--fake-latency", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.battles < 1 or args.runs < 1:
        parser.error("--battles and --runs must be at least 1")

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        server = RedisServer(dir=tmp / "redis", aof=False).start()
        fake = None
        if args.base_url is None:
            fake = FakeApiServer(
                api_key=None, models=(args.model,), answer_delay_s=args.fake_latency
            ).start()
            base_url = fake.openai_url
        else:
            base_url = args.base_url
        client = redis.Redis.from_url(server.url)
        worker: subprocess.Popen[bytes] | None = None
        try:
            wav = speak(
                "Hello! Could you tell me a short story about a robot who learns to sing?",
                tmp / "q.wav",
            )
            clip = encode(wav, "ogg", "libopus", 48_000)
            models = tmp / "models.toml"
            models.write_text(
                "".join(
                    MODEL_ENTRY.format(
                        id=side,
                        model=args.model,
                        url=base_url,
                        audio_part=args.audio_part,
                        max_tokens=args.max_tokens,
                    )
                    for side in ("side-a", "side-b")
                )
            )
            env = {**os.environ, "REDIS_URL": server.url, "PARLEY_MODELS": str(models)}
            env["PARLEY_LOG_LEVEL"] = "WARNING"
            worker = subprocess.Popen(
                [sys.executable, "-m", "workers", "--concurrency", str(2 * args.battles)],
                cwd=REPO,
                env=env,
            )
            wait_workers(client, 1)
            bot = Bot(client)
            battle_times(bot, clip, 1)  # warm the connections and the server
            one = statistics.median(battle_times(bot, clip, 1) for _ in range(args.runs))
            many = statistics.median(
                battle_times(bot, clip, args.battles) for _ in range(args.runs)
            )
            where = args.base_url or f"local fake, {args.fake_latency:g} s per answer"
            print(f"# bench_concurrency: {args.model} at {where}; worker --concurrency "
                  f"{2 * args.battles}; median of {args.runs}")  # fmt: skip
            print(f"one battle: {one:.3f} s")
            print(f"{args.battles} battles at once: {many:.3f} s ({many / one:.2f}x one battle)")
            print(f"goal: <= 1.5x -> {'met' if many <= 1.5 * one else 'NOT met'}")
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            client.close()
            if fake is not None:
                fake.stop()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
