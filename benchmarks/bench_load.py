"""Load: many participants send voice messages through the stand-in to one bot and its workers.

The whole stack runs as in the e2e tests (devstack/harness.py): a private AOF redis-server,
the Discord stand-in, the real bot process (`python -m bot`), 1-2 real worker processes
(`python -m workers`) and the fake OpenAI-compatible model server, here with a short fixed
answer delay. Participants join (/join, consent, skip the form), then voice messages arrive at
a steady rate (round robin over the participants); each is answered, and its participant
votes as soon as the buttons come on. At the end:

- the export (`python -m bot.export`) must hold exactly one row per message, each voted once,
  and the event stream exactly one vote event per battle: nothing lost, nothing doubled;
- bot-side latency, read from timestamps, no instrumentation in the bot:
  * message -> both jobs enqueued: the message's snowflake time (when the stand-in created it,
    just before sending MESSAGE_CREATE to the bot) to the later `enqueued_at` of the battle's
    two RQ jobs (`rq:job:<id>`, job ids from the battle's `ui.jobs`);
  * click -> vote stored: the interaction's snowflake time to the battle record's `voted_at`.
  Both include the gateway hop from the stand-in to the bot (same machine, sub-millisecond
  when idle). Target: p99 <= 100 ms for both.

    .venv/bin/python benchmarks/bench_load.py [--participants 500] [--messages 2000]
        [--rate 10] [--workers 2] [--model-delay 0.05] [--seed 7]

A quick run: --participants 50 --messages 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.discord_app import custom_ids as ids
from contract import keys
from devstack.clips import encode, speak
from devstack.driver import StudyDriver
from devstack.harness import ManagedProcess, Stack
from devstack.helpers import UPDATE_MESSAGE, texts
from devstack.standin.state import DISCORD_EPOCH_MS, Channel, User

REPO = Path(__file__).resolve().parents[1]

CHOICES = ("a", "b", "tie", "bothbad")
WAIT_S = 300.0  # per message: generous, the queue may be long at high rates


def snowflake_time(snowflake: str) -> float:
    """Unix seconds (ms resolution) at which the stand-in made this id."""
    return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000


def rq_time(raw: bytes | str) -> float:
    """RQ's `enqueued_at` ("2026-11-27T04:18:04.123456Z", UTC) as unix seconds."""
    text = (raw.decode() if isinstance(raw, bytes) else raw).rstrip("Z")
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def percentiles(values: list[float]) -> str:
    if not values:
        return "no data"
    ms = np.asarray(values) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return f"p50 {p50:6.1f} ms  p90 {p90:6.1f} ms  p99 {p99:6.1f} ms  max {ms.max():7.1f} ms"


@dataclass
class Round:
    message_id: str
    progress_id: str = ""  # the bot's "got your message" reply
    battle_id: str = ""
    click_id: str = ""
    voted: bool = False
    error: str = ""


async def one_round(
    driver: StudyDriver, user: User, thread: Channel, ogg: bytes, choice: str
) -> Round:
    sent = await driver.send_voice(user, thread, ogg, duration_secs=1.0)
    result = Round(sent["id"])
    try:
        progress = await driver.wait_reply(thread, sent, timeout=WAIT_S)
        result.progress_id = progress["id"]
        result.battle_id = await driver.wait_vote_buttons(progress["id"], timeout=WAIT_S)
        click = await driver.standin.click(user, progress["id"], ids.vote(result.battle_id, choice))
        result.click_id = click.id
        response = await driver.answer(click, timeout=60)
        result.voted = response.type == UPDATE_MESSAGE  # the message updated with the reveal
        if not result.voted:
            result.error = f"vote answered with {texts(response)!r}"
    except TimeoutError as exc:
        result.error = str(exc)
    return result


def export(stack: Stack, out: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bot.export", "--out", str(out)],
        cwd=REPO,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bot.export failed: {done.stderr}")
    return [json.loads(line) for line in out.read_text("utf-8").splitlines() if line]


async def run(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="parley-load-"))
    clip_wav = speak("What is the weather like on Mars?", workdir / "q.wav")
    ogg = encode(clip_wav, "ogg", "libopus", 48_000)
    stack = Stack(workdir)
    await stack.start(timeout=120)
    extra: list[ManagedProcess] = []
    try:
        if stack.fake_api is None or stack.models_file is None:
            raise RuntimeError("the stack runs its own fake model API and models file")
        stack.fake_api.answer_delay_s = args.model_delay
        for n in range(1, args.workers):
            worker = ManagedProcess(
                f"worker{n}",
                [
                    sys.executable,
                    "-m",
                    "workers",
                    "--models",
                    str(stack.models_file),
                    *stack.worker_args,
                ],
                stack.env(),
                workdir / f"worker{n}.log",
            ).start()
            extra.append(worker)
        # Answers wait behind hundreds of others; waiters poll at a gentler 20 ms.
        driver = StudyDriver(stack, timeout=60, poll_s=0.02)
        per_person = -(-args.messages // args.participants)
        # One turn per battle: each voice message is a round of its own, even when a participant's
        # next message arrives before their vote (otherwise it would be the battle's next turn).
        await driver.open_study(daily_quota=max(per_person, 1) + 1, max_turns=1)

        started = time.monotonic()
        gate = asyncio.Semaphore(8)

        async def joined(i: int) -> tuple[User, Channel]:
            async with gate:
                return await driver.join(f"p{i:04d}")

        people = await asyncio.gather(*(joined(i) for i in range(args.participants)))
        join_s = time.monotonic() - started
        print(f"{args.participants} participants joined in {join_s:.1f} s", flush=True)

        choices = rng.choice(CHOICES, size=args.messages)
        tasks: list[asyncio.Task[Round]] = []
        started = time.monotonic()
        for i in range(args.messages):
            # An open loop: messages arrive at the set rate whatever the bot's pace.
            due = started + i / args.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            user, thread = people[i % args.participants]
            tasks.append(asyncio.create_task(one_round(driver, user, thread, ogg, str(choices[i]))))
            if (i + 1) % 200 == 0:
                done = sum(t.done() for t in tasks)
                print(f"  sent {i + 1}, {done} rounds done", flush=True)
        offered = time.monotonic() - started
        rounds = await asyncio.gather(*tasks)
        wall = time.monotonic() - started
        print(
            f"{args.messages} messages sent in {offered:.1f} s ({args.messages / offered:.1f}/s); "
            f"the last vote {wall:.1f} s after the first message",
            flush=True,
        )

        failures = [r for r in rounds if not r.voted]
        rows = export(stack, workdir / "battles.jsonl")
        client = stack.redis_client()
        try:
            events = client.xrange(keys.EVENTS) or []
            votes = sum(1 for _, fields in events if fields and fields.get(b"type") == b"vote")
            enqueue_s: list[float] = []
            replied_s: list[float] = []  # the part of enqueue_s before the bot's first reply
            created_s: list[float] = []  # the part of enqueue_s before start_battle's write
            vote_s: list[float] = []
            for r in rounds:
                if not r.battle_id:
                    continue
                record = client.hgetall(keys.battle(r.battle_id))
                jobs = json.loads(record.get(b"ui.jobs") or b"[]")
                stamps = [client.hget(f"rq:job:{job}", "enqueued_at") for job in jobs]
                if len(stamps) == 2 and all(stamps):
                    enqueued = max(rq_time(s) for s in stamps if s is not None)
                    enqueue_s.append(enqueued - snowflake_time(r.message_id))
                    replied_s.append(snowflake_time(r.progress_id) - snowflake_time(r.message_id))
                    created = float(record[b"created_at"])
                    created_s.append(created - snowflake_time(r.message_id))
                if r.voted and record.get(b"voted_at"):
                    vote_s.append(float(record[b"voted_at"]) - snowflake_time(r.click_id))
        finally:
            client.close()
        by_id = {row["battle_id"]: row for row in rows}
        ours = {r.battle_id for r in rounds if r.battle_id}
        voted_rows = [row for row in rows if row.get("winner")]
        print()
        print(f"rounds voted:            {len(rounds) - len(failures)} / {args.messages}")
        print(f"export rows:             {len(rows)} ({len(by_id)} distinct battle ids)")
        print(f"export rows with a vote: {len(voted_rows)}")
        print(f"vote events:             {votes}")
        print(f"battle ids of the run == export's: {ours == set(by_id)}")
        print(f"message -> both jobs enqueued: {percentiles(enqueue_s)}  (n={len(enqueue_s)})")
        print(f"  message -> progress reply posted: {percentiles(replied_s)}")
        print(f"  message -> battle stored:         {percentiles(created_s)}")
        print(f"click -> vote stored:          {percentiles(vote_s)}  (n={len(vote_s)})")
        print(f"bot log: {stack.bot_log().count('Traceback')} tracebacks; logs in {workdir}")
        for failure in failures[:5]:
            print(f"  failed round {failure.message_id}: {failure.error}")
        complete = (
            not failures
            and len(rows) == len(by_id) == args.messages
            and len(voted_rows) == votes == args.messages
            and ours == set(by_id)
        )
        print("all answered, all votes recorded once" if complete else "INCOMPLETE")
        return 0 if complete else 1
    finally:
        for worker in extra:
            worker.stop()
        await stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=10.0, help="voice messages per second")
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2))
    parser.add_argument(
        "--model-delay", type=float, default=0.05, help="the fake model's fixed delay (s)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.participants < 1 or args.messages < 1 or args.rate <= 0:
        parser.error("--participants and --messages must be >= 1 and --rate > 0")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
