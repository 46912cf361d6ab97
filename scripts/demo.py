"""`make demo`: a whole Parley study on this machine, in one command.

It starts a private Redis (AOF on), the local Discord stand-in, the real bot (`python -m bot`) and
one worker (`python -m workers`) with the small local models of `examples/models.demo.toml`. Then
simulated participants join, consent, send voice messages of real synthesized speech (espeak-ng,
Ogg/Opus like Discord's voice messages) asking varied questions, and vote by a hidden preference:
a Bradley–Terry model with known strengths. Finally it exports the battles, builds the analysis
report, and checks that the ranking it finds is the hidden one.

The simulated participants are the only part that peeks behind "Model A" / "Model B": they read
the battle from the store to apply their hidden preference (the tiny local models have random
weights, so their replies carry no signal a simulated voter could judge). The bot never shows a
model's name before the vote.

With `--replies speech` (or `both`) the replies are spoken: the demo's models file gains a
`[tts]` table voicing every text reply with espeak-ng, and each battle message carries the two
spoken replies (reply-a.ogg, reply-b.ogg) with its vote buttons.

    python -m scripts.demo [--participants 12] [--battles 5] [--seed 7] [--data-dir data]
                           [--replies text|speech|both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.battles import normalise_battles
from analysis.report import build_report
from bot.core import Study, connect
from contract.modelsfile import load_models_file

if TYPE_CHECKING:
    from devstack.driver import StudyDriver

REPO = Path(__file__).resolve().parents[1]
DEMO_MODELS = REPO / "examples" / "models.demo.toml"

# The hidden preference: Bradley–Terry strengths of the demo models (the right answer). With
# 60 battles these are recovered in about 998 of 1,000 simulated runs (ties half a win).
# The participants prefer the one model with real weights (SmolLM2 behind Whisper tiny.en).
HIDDEN_STRENGTHS = {"demo-pipeline": 16.0, "demo-qwen2-audio": 4.0, "demo-pipeline-qwen": 1.0}
TIE_PROBABILITY = 0.08

QUESTIONS = (
    "What is the capital of France?",
    "Can you recommend a good book for a long train ride?",
    "How do I make a simple tomato soup?",
    "Why is the sky blue?",
    "Tell me a short joke about cats.",
    "What should I pack for a weekend of hiking?",
    "How far away is the moon?",
    "Give me three tips for sleeping better.",
    "What is the difference between weather and climate?",
    "How do you say thank you in Japanese?",
    "Which planet is the largest in our solar system?",
    "Help me plan a birthday party for a ten year old.",
    "What is a good way to start learning to play the guitar?",
    "Explain what a black hole is in simple words.",
    "Is it healthy to drink coffee every day?",
    "What are some fun things to do in London when it rains?",
)
COMMENTS = (
    "A sounded more natural.",
    "Neither answered my question really.",
    "B was too long.",
    "I liked the friendlier tone.",
)


@dataclass
class Progress:
    total: int
    voted: int = 0
    comments: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self, note: str = "") -> None:
        width = 30
        done = int(width * (self.voted + self.failed) / max(self.total, 1))
        bar = "#" * done + "." * (width - done)
        elapsed = time.monotonic() - self.started
        print(
            f"\r  [{bar}] {self.voted + self.failed}/{self.total} battles "
            f"({self.voted} voted, {self.failed} failed, {self.comments} comments) "
            f"{elapsed:5.0f} s {note}",
            end="",
            flush=True,
        )


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def hidden_vote(rng: np.random.Generator, model_a: str, model_b: str) -> str:
    """The vote a participant with the hidden preference casts (a side: a, b or tie)."""
    if rng.random() < TIE_PROBABILITY:
        return "tie"
    strength_a, strength_b = HIDDEN_STRENGTHS[model_a], HIDDEN_STRENGTHS[model_b]
    return "a" if rng.random() < strength_a / (strength_a + strength_b) else "b"


async def participant_session(
    driver: StudyDriver,
    study: Study,
    index: int,
    battles: int,
    rng: np.random.Generator,
    progress: Progress,
    transcript: list[str] | None,
) -> None:
    """One simulated participant: join, consent, (maybe) the form, then `battles` battles."""
    from devstack.helpers import texts
    from devstack.standin.voice import speak

    standin = driver.standin
    user = await standin.add_member(f"participant{index:02d}")
    consent = await driver.consent_form(user)
    agreed = await driver.consent(user, consent)
    bands = ("18-24", "25-34", "35-44", "45-54")
    about = {"age_band": bands[index % 4], "first_language": "English"}
    done = await driver.about_you(
        user, agreed.original or consent.original or {}, about if index % 2 == 0 else None
    )
    if transcript is not None:
        transcript += [
            f"**{user.username}** runs `/join`",
            "> **Parley** (only you can see this):",
            *[f"> {line}" for line in _first_lines(texts(consent), 4)],
            "> [Agree] [Decline]",
            f"**{user.username}** clicks **Agree**, fills in the optional form (age band, first "
            "language; every field skippable)",
            "> **Parley**:",
            *[f"> {line}" for line in _first_lines(texts(done), 8)],
        ]
    # Half talk in their private thread in the study channel, half in a DM with the bot.
    threads = [t for t in standin.threads() if user.id in t.member_ids]
    channel = threads[0] if threads and index % 2 == 0 else standin.dm_channel(user)

    for turn in range(battles):
        question = QUESTIONS[int(rng.integers(len(QUESTIONS)))]
        clip = await asyncio.to_thread(speak, question)
        progress_message = await driver.ask(user, channel, clip, timeout=120)
        try:
            battle_id = await driver.wait_vote_buttons(progress_message["id"], timeout=240)
        except TimeoutError:
            progress.failed += 1
            progress.line()
            continue
        battle = await study.battle(battle_id)
        if battle is None:
            raise RuntimeError(f"battle {battle_id} shown with vote buttons is not in the store")
        shown = standin.message(progress_message["id"])
        shown_before_vote = shown.get("content") or ""  # the stand-in edits `shown` in place
        heard = [f"🔊 {a['filename']}" for a in shown.get("attachments") or []]
        if rng.random() < 0.25:
            comment = COMMENTS[int(rng.integers(len(COMMENTS)))]
            await driver.comment(user, shown, battle_id, comment)
            progress.comments += 1
        choice = hidden_vote(rng, battle.model_a, battle.model_b)
        voted = await driver.vote(user, progress_message["id"], battle_id, choice)
        if transcript is not None and turn == 0:
            label = {"a": "A is better", "b": "B is better", "tie": "Tie"}[choice]
            transcript += [
                f'**{user.username}** sends a voice message: 🎤 *"{question}"* '
                f"({clip.duration_secs:.1f} s)",
                "> **Parley**:",
                *[f"> {line}" for line in shown_before_vote.splitlines()],
                *[f"> [{name}]" for name in heard],
                "> [A is better] [B is better] [Tie] [Both are bad] [Add a comment]",
                f"**{user.username}** clicks **{label}**",
                "> **Parley**:",
                *[f"> {line}" for line in texts(voted).splitlines() if "Thanks" in line],
            ]
        progress.voted += 1
        progress.line()


# The study voice of a spoken demo: local, offline, the same for both sides.
DEMO_TTS = '\n[tts]\nbackend = "espeak_ng"\nvoice = "en-us"\nspeed = 190\n'


def demo_models_file(workdir: Path, replies: str) -> Path:
    """The demo's models file; for spoken replies a copy of it with the espeak-ng voice."""
    if replies == "text":
        return DEMO_MODELS
    spoken = workdir / "models.demo.speech.toml"
    workdir.mkdir(parents=True, exist_ok=True)
    spoken.write_text(DEMO_MODELS.read_text(encoding="utf-8") + DEMO_TTS, encoding="utf-8")
    return spoken


def _first_lines(text: str, n: int) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][:n]


def export(stack: Any, out: Path) -> None:
    env = stack.env()
    result = subprocess.run(
        [sys.executable, "-m", "bot.export", "--out", str(out),
         "--participants", str(out.with_name("participants.csv"))],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"export failed:\n{result.stdout}\n{result.stderr}")
    print("  " + result.stdout.strip().replace("\n", "\n  "))


def check_ranking(leaderboard: pd.DataFrame) -> bool:
    found = list(leaderboard.sort_values("rating", ascending=False)["model"])
    truth = sorted(HIDDEN_STRENGTHS, key=HIDDEN_STRENGTHS.__getitem__, reverse=True)
    print(f"  hidden preference order: {' > '.join(truth)}")
    print(f"  order the study found:   {' > '.join(found)}")
    return found == truth


async def run(args: argparse.Namespace) -> int:
    from devstack.driver import StudyDriver
    from devstack.harness import Stack

    workdir = (Path(args.data_dir) / "demo").resolve()
    if workdir.exists():
        shutil.rmtree(workdir)  # run again without leftovers
    models_path = demo_models_file(workdir, args.replies)
    models = load_models_file(models_path)
    say("Starting Redis (AOF), the Discord stand-in, the bot and a worker with the demo models")
    print("  (the first run builds the tiny local models; later runs reuse them)")
    # One core for torch in the worker, the other for the bot, the stand-in and Redis: torch
    # takes every core by default, and a starved bot would miss Discord's 3 s answer window.
    stack = Stack(
        workdir,
        models_file=models_path,
        worker_args=[],
        extra_env={"OMP_NUM_THREADS": "1"},
        # As in a real study: closed until the moderator below runs /study open.
        open_at_start=False,
    )
    study_redis = None
    try:
        await stack.start(timeout=300)
        print(f"  stack up; logs in {workdir}")
        study_redis = connect(stack.redis_url)
        study = Study(
            study_redis,
            secret=stack.env()["PARLEY_SECRET"].encode(),
            data_dir=stack.data_dir,
            known_models=models,
            rng=np.random.default_rng(0),
        )

        say("A moderator sets up the study")
        # Answers come slower here than in the tests: torch shares the machine.
        driver = StudyDriver(stack, timeout=30)
        roster = ", ".join(HIDDEN_STRENGTHS)
        moderator = await driver.open_study(
            "moderator", roster=roster, daily_quota=args.battles + 5
        )
        await driver.moderate(moderator, "strategy", strategy="balanced")
        said = await driver.moderate(moderator, "replies", mode=args.replies)
        if f"**Replies:** {args.replies}" not in said:
            raise RuntimeError(f"setting the reply mode failed: {said!r}")
        await driver.moderate(moderator, "open")
        print(f"  roster: {roster}; strategy: balanced; replies: {args.replies}")

        total = args.participants * args.battles
        say(f"{args.participants} participants speak and vote ({total} battles)")
        progress = Progress(total=total)
        transcript: list[str] = []
        sessions = [
            participant_session(
                driver, study, i, args.battles, np.random.default_rng([args.seed, i]), progress,
                transcript if i == 0 else None,
            )
            for i in range(args.participants)
        ]  # fmt: skip
        await asyncio.gather(*sessions)
        progress.line("done")
        print()

        say("Exporting the battles and building the report")
        exports = stack.data_dir / "exports"
        battles_path = exports / "battles.parquet"
        export(stack, battles_path)
        report_dir = stack.data_dir / "reports"
        battles = normalise_battles(pd.read_parquet(battles_path))
        report = await asyncio.to_thread(
            build_report, battles, report_dir, rounds=1000, seed=args.seed,
            title="Parley demo study",
        )  # fmt: skip
        leaderboard = pd.read_csv(report_dir / "leaderboard.csv")
        (workdir / "transcript.md").write_text("\n\n".join(transcript) + "\n", encoding="utf-8")

        say("Leaderboard (Bradley–Terry, 95% bootstrap intervals)")
        for row in leaderboard.sort_values("rank").itertuples():
            print(
                f"  {int(row.rank)}. {row.model:<20} {row.rating:7.1f}  "
                f"[{row.rating_lo:7.1f}, {row.rating_hi:7.1f}]  "
                f"{int(row.battles):3d} battles  win rate {row.win_rate:.2f}"
            )
        correct = check_ranking(leaderboard)
        print(
            "  ✓ the study recovered the hidden preference"
            if correct
            else "  ✗ the study did not recover the hidden preference (too few votes?)"
        )
        if "Traceback" in stack.bot_log() or "Traceback" in stack.worker_log():
            print("  ! tracebacks in the logs: see bot.log / worker.log in " + str(workdir))
            return 1

        say("Done")
        print(f"  report:      {report}")
        print(f"  battles:     {battles_path}")
        print(f"  transcript:  {workdir / 'transcript.md'}")
        print(f"  logs:        {workdir}/bot.log, {workdir}/worker.log")
        print(f"  took {time.monotonic() - progress.started:.0f} s of simulated study")
        return 0 if correct else 2
    finally:
        if study_redis is not None:
            await study_redis.aclose()
        await stack.stop()


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the demo like Ctrl-C, so `finally` stops everything it started."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=12)
    parser.add_argument("--battles", type=int, default=5, help="battles per participant")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", default="data", help="the demo writes under DIR/demo")
    parser.add_argument(
        "--replies",
        choices=("text", "speech", "both"),
        default="text",
        help="how replies reach the participants; speech and both voice them with espeak-ng",
    )
    args = parser.parse_args(argv)
    if args.participants < 1 or args.battles < 1:
        parser.error("--participants and --battles must be at least 1")
    with terminate_on_sigterm():
        try:
            return asyncio.run(run(args))
        except KeyboardInterrupt:
            print("\ninterrupted: everything the demo started has been stopped", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
