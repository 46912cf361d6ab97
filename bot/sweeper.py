"""The abandoned-job sweeper: no battle waits forever for a reply that will never come.

A side of a battle gets its reply through the normal path: a worker publishes a `ResultMessage`
on `RESULTS_STREAM` (the job's own result, or the RQ failure callback's). Two things break that
path: a worker killed outright (SIGKILL, OOM, a lost host) runs no callback, and a job can
vanish (never enqueued because the bot crashed, or gone from Redis). RQ itself only notices an
abandoned job once its StartedJobRegistry entry expires (job timeout + 60 s for a
`SimpleWorker`) and only when some live worker cleans that queue's registries.

Every `interval_s` the sweeper looks at each queued battle's sides still without a reply, finds
the side's current RQ job (the battle's `ui.jobs`, or the sweeper's own re-enqueued one) and
decides from its state:

- waiting in the queue: fine, unless it waited longer than `max_queue_wait_s` (then failed:
  enqueuing it again would not help), or longer than `unserved_wait_s` while no live worker
  (heartbeat) serves its model (then failed at once: the participant is told in minutes, not
  after half an hour, and `/study status` names the model nobody serves);
- taken from the queue by a worker but never started (status queued, in no queue: the worker
  died between taking it and starting it) for longer than `margin_s`: abandoned;
- started: fine while its worker's heartbeat (`WORKERS_KEY`) is fresh and the job is within
  its timeout + `margin_s`; else abandoned;
- missing, or stopped / canceled with no reply recorded `margin_s` later: abandoned;
- finished or failed (its result is on the stream, waiting for the bot): left to the result
  path; failed without re-enqueue only if no result was recorded `max_queue_wait_s` later.

An abandoned side is enqueued again once (`requeues`; the attempt is claimed in Redis before the
enqueue, so a crash can never cause a second one), its old job retired from RQ's started
registry so RQ's own cleanup does not run it a third time. When no attempt is left, the sweeper
publishes a failure `ResultMessage` on `RESULTS_STREAM`: the bot's normal result path records it
(idempotently) and tells the participant.

Plain Python over Redis, no Discord: RQ only through `contract.queueing`, heartbeats through
`contract.heartbeat`. `Sweeper(study, rq_conn, ...)` where `rq_conn` is the synchronous
`redis.Redis` RQ uses (bytes, not decoded).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

import redis
from redis.exceptions import RedisError

from bot.core.codec import as_text
from contract import heartbeat, keys, queueing
from contract.keys import RESULTS_STREAM, turn_audio_key
from contract.protocol import ErrorKind, JobRequest, ResultMessage, Side
from contract.queueing import JobSnapshot, JobState
from contract.records import Battle, BattleStatus

if TYPE_CHECKING:
    from bot.core import Study

log = logging.getLogger(__name__)

SWEEP_TTL_S = 7 * 24 * 3600
SWEEPER_NAME = "parley-sweeper"
SIDES: tuple[Side, ...] = ("a", "b")

Action = Literal["requeued", "failed"]


@dataclass(frozen=True)
class SweepAction:
    """What the sweeper did about one side of one battle."""

    battle_id: str
    side: str
    action: Action
    reason: str
    job_id: str | None  # the new job when requeued, the abandoned one when failed


@dataclass(frozen=True)
class _Attempt:
    job_id: str | None
    attempt: int  # 0: the bot's own enqueue; n: the sweeper's n-th
    since: float  # when this attempt was enqueued
    failed_at: float | None = None  # when the sweeper published the side's failure


@dataclass(frozen=True)
class _Verdict:
    reason: str
    kind: ErrorKind
    requeue: bool  # False where running the job again cannot help


class Sweeper:
    def __init__(
        self,
        study: Study,
        conn: redis.Redis,
        *,
        job_timeout_s: int,
        interval_s: float = 30.0,
        margin_s: float = 60.0,
        max_queue_wait_s: float = 1800.0,
        unserved_wait_s: float = 120.0,
        requeues: int = 1,
        job_retries: int = 1,
        stale_after_s: float = heartbeat.STALE_AFTER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("job_timeout_s", job_timeout_s),
            ("interval_s", interval_s),
            ("max_queue_wait_s", max_queue_wait_s),
            ("unserved_wait_s", unserved_wait_s),
            ("stale_after_s", stale_after_s),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name, value in (("margin_s", margin_s), ("requeues", requeues)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.study = study
        self.conn = conn
        self.job_timeout_s = job_timeout_s
        self.interval_s = interval_s
        self.margin_s = margin_s
        self.max_queue_wait_s = max_queue_wait_s
        self.unserved_wait_s = unserved_wait_s
        # Models some live worker serves, read once per sweep.
        self._served: set[str] = set()
        self.requeues = requeues
        self.job_retries = job_retries
        self.stale_after_s = stale_after_s
        self.clock = clock
        # Job id -> when a sweep first saw it taken from its queue and not started. RQ keeps
        # no time for that, and a live worker starts a job milliseconds after taking it, so
        # only a job still taken `margin_s` after the first sighting is abandoned. In memory:
        # a restarted bot only waits one margin more; claims keep two sweepers from both
        # enqueuing.
        self._taken_since: dict[str, float] = {}
        self._taken_now: set[str] = set()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Sweep every `interval_s` until cancelled; a Redis outage only delays the next sweep."""
        while True:
            try:
                for action in await self.sweep():
                    log.warning(
                        "battle %s side %s %s: %s",
                        action.battle_id,
                        action.side,
                        action.action,
                        action.reason,
                    )
            except (RedisError, OSError) as exc:
                log.warning("sweep failed (%s); next try in %.0f s", exc, self.interval_s)
            await asyncio.sleep(self.interval_s)

    async def sweep(self) -> list[SweepAction]:
        """One pass over the open battles; returns what was done."""
        max_audio_seconds = (await self.study.config()).limits.audio_max_seconds
        actions: list[SweepAction] = []
        battles = await self.study.open_battles()
        await asyncio.to_thread(self._forget_closed, {b.battle_id for b in battles})
        self._taken_now = set()
        live = await asyncio.to_thread(
            heartbeat.live_workers, self.conn, now=self.clock(), stale_after_s=self.stale_after_s
        )
        self._served = {model for worker in live for model in worker.models}
        for battle in battles:
            if battle.status is not BattleStatus.QUEUED:
                continue
            for side in SIDES:
                if side in battle.replies:
                    continue
                try:
                    action = await asyncio.to_thread(
                        self._sweep_side, battle, side, float(max_audio_seconds)
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    # Malformed data of one battle (a record, a job) must not stop the sweeps
                    # of all the others; Redis errors end the pass (run() retries it).
                    log.error("battle %s side %s cannot be swept: %r", battle.battle_id, side, exc)
                    continue
                if action is not None:
                    actions.append(action)
        # Forget sightings of jobs that are no longer taken (started, requeued, gone).
        self._taken_since = {
            job_id: since
            for job_id, since in self._taken_since.items()
            if job_id in self._taken_now
        }
        return actions

    def _forget_closed(self, open_ids: set[str]) -> None:
        """Drop the records of battles that are answered, voted, failed or withdrawn: the key
        names a battle, and nothing of a withdrawn participant's battles may stay behind."""
        swept = {as_text(raw) for raw in self.conn.smembers(keys.SWEPT_BATTLES)}
        done = sorted(swept - open_ids)
        if done:
            with self.conn.pipeline() as pipe:
                pipe.delete(*(keys.sweeper_battle(b) for b in done))
                pipe.srem(keys.SWEPT_BATTLES, *done)
                pipe.execute()

    # -- one side (synchronous: rq is) -------------------------------------------------------

    def _sweep_side(
        self, battle: Battle, side: Side, max_audio_seconds: float
    ) -> SweepAction | None:
        now = self.clock()
        attempt = self._attempt(battle, side)
        if attempt.failed_at is not None:
            return None  # the failure is on the stream: the bot's result path records it
        job = queueing.fetch_job(self.conn, attempt.job_id) if attempt.job_id else None
        model = battle.model_a if side == "a" else battle.model_b
        verdict = self._judge(attempt, job, now, model)
        if verdict is None:
            return None
        if verdict.requeue and attempt.attempt < self.requeues:
            new_id = self._requeue(battle, side, attempt, job, now, max_audio_seconds, verdict)
            if new_id is None:
                return None  # another sweep claimed this attempt first
            return SweepAction(battle.battle_id, side, "requeued", verdict.reason, new_id)
        self._retire(job, verdict.reason)
        self._publish_failure(battle, side, attempt, verdict, now)
        key = keys.sweeper_battle(battle.battle_id)
        record = {"attempt": attempt.attempt, "job_id": attempt.job_id, "at": attempt.since}
        with self.conn.pipeline() as pipe:
            pipe.hset(key, side, json.dumps({**record, "failed_at": now}))
            pipe.expire(key, SWEEP_TTL_S)
            pipe.sadd(keys.SWEPT_BATTLES, battle.battle_id)
            pipe.execute()
        return SweepAction(battle.battle_id, side, "failed", verdict.reason, attempt.job_id)

    def _attempt(self, battle: Battle, side: Side) -> _Attempt:
        raw = self.conn.hget(keys.sweeper_battle(battle.battle_id), side)
        if raw is not None:
            data = json.loads(raw)
            return _Attempt(
                data.get("job_id"), int(data["attempt"]), float(data["at"]), data.get("failed_at")
            )
        # The bot's own enqueue: ui.jobs holds the job ids in side order ("a", "b").
        jobs = battle.ui.get("jobs")
        job_id = None
        if isinstance(jobs, list) and len(jobs) == len(SIDES):
            job_id = str(jobs[SIDES.index(side)])
        return _Attempt(job_id, 0, battle.created_at)

    def _judge(
        self, attempt: _Attempt, job: JobSnapshot | None, now: float, model: str = ""
    ) -> _Verdict | None:
        """Why this side's job will never publish a result, or None while it still may."""
        waited = now - attempt.since
        if job is None:
            if waited <= self.margin_s:
                return None  # the bot may be between start_battle and enqueue
            what = "no job was enqueued" if attempt.job_id is None else "its job is gone"
            return _Verdict(f"{what} ({waited:.0f} s after the battle)", "transient", True)
        status = job.state
        if job.taken:
            self._taken_now.add(job.job_id)
            since = self._taken_since.setdefault(job.job_id, now)
            if now - since <= self.margin_s:
                return None
            return _Verdict(
                f"job {job.job_id} was taken from {job.queue} by a worker that never started it "
                f"(seen so far {now - since:.0f} s)",
                "transient",
                True,
            )
        if job.waiting:
            if waited > self.unserved_wait_s and model and model not in self._served:
                return _Verdict(
                    f"no live worker serves model {model!r} (job {job.job_id} waited "
                    f"{waited:.0f} s)",
                    "timeout",
                    False,
                )
            if waited <= self.max_queue_wait_s:
                return None
            return _Verdict(
                f"job {job.job_id} waited {waited:.0f} s for a worker of {job.queue}",
                "timeout",
                False,
            )
        if status is JobState.STARTED:
            worker = job.worker_name
            if worker and not heartbeat.is_alive(
                self.conn, worker, now=now, stale_after_s=self.stale_after_s
            ):
                return _Verdict(
                    f"worker {worker} died while running job {job.job_id}", "transient", True
                )
            started = job.started_at or attempt.since
            if now - started > (job.timeout or self.job_timeout_s) + self.margin_s:
                return _Verdict(
                    f"job {job.job_id} still running {now - started:.0f} s after it started, "
                    f"past its timeout of {job.timeout} s",
                    "timeout",
                    True,
                )
            return None
        ended = job.ended_at or attempt.since
        if status in (JobState.FINISHED, JobState.FAILED):
            # The job (or RQ's failure callback) put its result on the stream before it ended:
            # an unrecorded one is waiting for the bot (a backlog, or the bot is down), and
            # running the model again would only duplicate it. Only a result lost from the
            # stream leaves the side open this long; the real one, earlier on the stream, would
            # still win over this failure (record_reply keeps the first).
            if now - ended <= self.max_queue_wait_s:
                return None
            return _Verdict(
                f"job {job.job_id} ended ({status}) {now - ended:.0f} s ago and its result never "
                "reached the study",
                "permanent",
                False,
            )
        # Stopped or canceled (or created, never enqueued): no result was published.
        if now - ended <= self.margin_s:
            return None
        return _Verdict(
            f"job {job.job_id} ended ({status}) {now - ended:.0f} s ago without a result",
            "transient",
            True,
        )

    def _requeue(
        self,
        battle: Battle,
        side: Side,
        attempt: _Attempt,
        job: JobSnapshot | None,
        now: float,
        max_audio_seconds: float,
        verdict: _Verdict,
    ) -> str | None:
        """Enqueue the side again; None when another sweep already claimed this attempt."""
        key = keys.sweeper_battle(battle.battle_id)
        claim: dict[str, object] = {"attempt": attempt.attempt + 1, "job_id": None, "at": now}
        # Claim the attempt before enqueuing: a crash right after leaves "no job enqueued",
        # which the next sweeps fail instead of enqueuing a second time.
        if not self._claim(battle.battle_id, side, attempt.attempt, claim):
            return None
        self._retire(job, f"abandoned ({verdict.reason}); enqueued again by {SWEEPER_NAME}")
        request = self._request(battle, side, job, max_audio_seconds)
        new_id = queueing.enqueue_answer(
            self.conn,
            dataclasses.replace(request, enqueued_at=now),
            timeout_s=self.job_timeout_s,
            retries=self.job_retries,
        )
        self.conn.hset(key, side, json.dumps({**claim, "job_id": new_id}))
        return new_id

    def _claim(self, battle_id: str, side: str, seen: int, claim: dict[str, object]) -> bool:
        key = keys.sweeper_battle(battle_id)
        with self.conn.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.watch unannotated
                raw = pipe.hget(key, side)
                current = int(json.loads(raw)["attempt"]) if raw is not None else 0
                if current != seen:
                    pipe.reset()
                    return False
                pipe.multi()
                pipe.hset(key, side, json.dumps(claim))
                pipe.expire(key, SWEEP_TTL_S)
                pipe.sadd(keys.SWEPT_BATTLES, battle_id)
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def _request(
        self, battle: Battle, side: Side, job: JobSnapshot | None, max_audio_seconds: float
    ) -> JobRequest:
        """The side's job request: the old job's own, or rebuilt from the battle."""
        if job is not None and job.args:
            try:
                return job.request()
            except ValueError as exc:
                log.warning("%s; rebuilt from the battle", exc)
        fmt = PurePosixPath(battle.audio_ref or "").suffix.lstrip(".") or "ogg"
        return JobRequest(
            battle_id=battle.battle_id,
            side=side,
            model_id=battle.model_a if side == "a" else battle.model_b,
            audio_key=turn_audio_key(battle.battle_id, battle.turn),
            audio_format=fmt,
            max_audio_seconds=max_audio_seconds,
            speak=battle.reply_mode.spoken,
            history=battle.history(side),
            turn=battle.turn,
        )

    def _retire(self, job: JobSnapshot | None, reason: str) -> None:
        """Take an abandoned job out of RQ's hands, so neither a worker nor RQ's registry
        cleanup runs it (and publishes for it) later."""
        if job is not None:
            queueing.retire(self.conn, job.job_id, reason)

    def _publish_failure(
        self, battle: Battle, side: Side, attempt: _Attempt, verdict: _Verdict, now: float
    ) -> None:
        model = battle.model_a if side == "a" else battle.model_b
        message = ResultMessage(
            battle_id=battle.battle_id,
            side=side,
            model_id=model,
            reply=None,
            transcript=None,
            timings={"total": max(0.0, now - battle.created_at)},
            error=f"no reply from model {model!r}: {verdict.reason}",
            error_kind=verdict.kind,
            job_id=attempt.job_id,
            worker=SWEEPER_NAME,
            finished_at=now,
            turn=battle.turn,
        )
        self.conn.xadd(RESULTS_STREAM, message.to_fields())
