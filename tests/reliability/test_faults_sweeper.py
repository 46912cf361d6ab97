"""The abandoned-job sweeper against a real Redis and real RQ state (no worker process).

A crashed worker is RQ's own bookkeeping stopped half way (tests.reliability.faults_rq); the
clock the sweeper reads is moved by hand, starting at the real time RQ stamps its jobs with.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from bot import dispatch
from bot.core import Battle, Study
from bot.sweeper import SWEEPER_NAME, Sweeper
from contract import heartbeat, keys
from contract.heartbeat import WorkerEntry
from contract.keys import RESULTS_STREAM, queue_name
from contract.modelsfile import load_models_file
from contract.protocol import JobRequest, ResultMessage
from contract.records import BattleStatus
from tests.core.helpers import AUDIO, MODELS_TOML, Clock, make_study
from tests.reliability.faults_rq import beat, start_job_and_die, take_job_and_die

pytestmark = pytest.mark.reliability

TIMEOUT_S = 20
MARGIN_S = 30.0
DEAD = "parley-host-4242"


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
async def study(redis_url: str, tmp_path: Path, clock: Clock) -> AsyncIterator[Study]:
    (tmp_path / "models.toml").write_text(MODELS_TOML)
    client = aioredis.Redis.from_url(redis_url, decode_responses=False)
    yield make_study(client, load_models_file(tmp_path / "models.toml"), tmp_path / "data", clock)
    await client.aclose()


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def sweeper(study: Study, conn: redis.Redis, clock: Clock, **options: float) -> Sweeper:
    return Sweeper(study, conn, job_timeout_s=TIMEOUT_S, margin_s=MARGIN_S, clock=clock, **options)


async def enqueued_battle(study: Study, conn: redis.Redis, *, enqueue: bool = True) -> Battle:
    """A battle as the bot starts it: the core's record, then one RQ job per side in ui.jobs."""
    await study.consent(1001, "1")
    battle = await study.start_battle(1001, AUDIO, 3.0, "ogg")
    if enqueue:
        requests = dispatch.battle_requests(
            battle.battle_id,
            {"a": battle.model_a, "b": battle.model_b},
            audio_format="ogg",
            max_audio_seconds=60.0,
            now=battle.created_at,
        )
        jobs = dispatch.enqueue_battle(conn, requests, timeout_s=TIMEOUT_S)
        await study.set_ui(battle.battle_id, jobs=jobs)
    found = await study.battle(battle.battle_id)
    assert found is not None
    return found


def results(conn: redis.Redis) -> list[ResultMessage]:
    return [ResultMessage.from_fields(fields) for _, fields in conn.xrange(RESULTS_STREAM)]


async def test_waiting_and_running_jobs_are_left_alone(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    battle = await enqueued_battle(study, conn)
    sweep = sweeper(study, conn, clock)
    assert await sweep.sweep() == []
    # Side a runs on a live worker; side b waits in its queue past the margin.
    job = start_job_and_die(conn, queue_name(battle.model_a), worker="alive", heartbeat_at=None)
    clock.advance(MARGIN_S + 5)
    beat(conn, "alive", clock.now)
    assert await sweep.sweep() == []
    assert job.get_status(refresh=True) == JobStatus.STARTED
    assert results(conn) == []


async def test_dead_worker_job_is_requeued_once_then_failed(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    battle = await enqueued_battle(study, conn)
    sweep = sweeper(study, conn, clock)
    old = start_job_and_die(conn, queue_name(battle.model_a), worker=DEAD, heartbeat_at=clock.now)
    # Fresh heartbeat: still alive.
    assert await sweep.sweep() == []

    clock.advance(16)  # the heartbeat is now stale (workers beat every 5 s, stale after 15)
    [action] = await sweep.sweep()
    assert (action.battle_id, action.side, action.action) == (battle.battle_id, "a", "requeued")
    assert DEAD in action.reason
    new = Job.fetch(action.job_id, connection=conn)
    assert new.get_status() == JobStatus.QUEUED
    assert new.args[0] == {**old.args[0], "enqueued_at": clock.now}
    assert JobRequest.from_dict(new.args[0]).model_id == battle.model_a
    # The old job is out of RQ's hands: failed, no execution left, never retried by RQ.
    old.refresh()
    assert old.get_status() == JobStatus.FAILED
    assert old.retries_left == 0
    origin = queue_name(battle.model_a)
    assert StartedJobRegistry(origin, connection=conn).get_job_ids(cleanup=False) == []
    assert old.id in FailedJobRegistry(origin, connection=conn).get_job_ids()
    StartedJobRegistry(origin, connection=conn).cleanup(time.time() + 10 * TIMEOUT_S)
    assert Queue(origin, connection=conn).get_job_ids() == [new.id]
    assert results(conn) == []
    assert await sweep.sweep() == [], "the new job waits in its queue"

    # The second attempt dies too: no attempt left, the participant is told.
    again = start_job_and_die(conn, origin, worker=DEAD + "-2", heartbeat_at=clock.now)
    assert again.id == new.id
    clock.advance(16)
    [action] = await sweep.sweep()
    assert (action.side, action.action, action.job_id) == ("a", "failed", new.id)
    [failure] = results(conn)
    assert failure.battle_id == battle.battle_id
    assert (failure.side, failure.model_id) == ("a", battle.model_a)
    assert failure.error_kind == "transient"
    assert failure.worker == SWEEPER_NAME
    assert DEAD + "-2" in (failure.error or "")
    assert await sweep.sweep() == [], "a failure is published once"
    assert len(results(conn)) == 1

    # The normal result path records it: the battle is failed, and no longer swept.
    recorded, changed = await study.record_reply(failure)
    assert changed
    assert recorded.status is BattleStatus.FAILED
    clock.advance(3600)
    assert await sweep.sweep() == []
    assert conn.exists(keys.sweeper_battle(battle.battle_id)) == 0, "record forgotten"
    assert conn.smembers(keys.SWEPT_BATTLES) == set()


async def test_a_job_taken_by_a_worker_killed_before_starting_it_is_requeued(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    """Killed between taking the job (rq's LMOVE into the intermediate list) and marking it
    started, a worker leaves the job `queued` in no queue. It is abandoned a margin after the
    sweeper first sees it so, not after the maximum queue wait (30 min)."""
    battle = await enqueued_battle(study, conn)
    origin = queue_name(battle.model_a)
    old = take_job_and_die(conn, origin, worker=DEAD)
    assert old.id == battle.ui["jobs"][0]
    assert old.get_status() == JobStatus.QUEUED
    assert Queue(origin, connection=conn).get_job_ids() == []
    sweep = sweeper(study, conn, clock)
    assert sweep.max_queue_wait_s > 10 * MARGIN_S
    clock.advance(5)
    assert await sweep.sweep() == [], "first sighting: a live worker may be about to start it"
    clock.advance(MARGIN_S - 1)
    assert await sweep.sweep() == []
    clock.advance(2)
    [action] = await sweep.sweep()
    assert (action.side, action.action) == ("a", "requeued")
    assert old.id in action.reason
    assert "never started" in action.reason
    new = Job.fetch(action.job_id, connection=conn)
    assert new.get_status() == JobStatus.QUEUED
    assert new.args[0] == {**old.args[0], "enqueued_at": clock.now}
    assert Queue(origin, connection=conn).get_job_ids() == [new.id]
    # The old job is out of RQ's hands: failed, out of the intermediate list, no retry left, so
    # RQ's own intermediate-list cleanup does not run it again.
    old.refresh()
    assert old.get_status() == JobStatus.FAILED
    assert old.retries_left == 0
    queue = Queue(origin, connection=conn)
    assert conn.lrange(queue.intermediate_queue_key, 0, -1) == []
    assert old.id in FailedJobRegistry(origin, connection=conn).get_job_ids()
    assert results(conn) == []
    assert await sweep.sweep() == [], "the new job waits in its queue"


async def test_a_job_taken_and_then_started_by_a_live_worker_is_left_alone(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    """A sweep that catches a live worker between taking a job and starting it must not count
    that sighting against the job later."""
    battle = await enqueued_battle(study, conn)
    origin = queue_name(battle.model_a)
    sweep = sweeper(study, conn, clock)
    taken = take_job_and_die(conn, origin, worker="alive")
    assert await sweep.sweep() == []
    # The rest of what rq's worker does before it runs the job.
    worker = SimpleWorker([Queue(origin, connection=conn)], connection=conn, name="alive")
    worker.prepare_execution(taken)
    worker.prepare_job_execution(taken, remove_from_intermediate_queue=True)
    clock.advance(MARGIN_S + 1)
    beat(conn, "alive", clock.now)
    assert await sweep.sweep() == []
    assert taken.get_status(refresh=True) == JobStatus.STARTED


async def test_a_job_back_in_its_queue_gets_a_fresh_margin_when_taken_again(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    battle = await enqueued_battle(study, conn)
    origin = queue_name(battle.model_a)
    queue = Queue(origin, connection=conn)
    sweep = sweeper(study, conn, clock)
    taken = take_job_and_die(conn, origin, worker=DEAD)
    assert await sweep.sweep() == []
    # Put back as RQ's intermediate-list cleanup does for a job with a retry left.
    conn.lrem(queue.intermediate_queue_key, 0, taken.id)
    conn.rpush(queue.key, taken.id)
    clock.advance(MARGIN_S + 1)
    assert await sweep.sweep() == [], "waiting in its queue again"
    assert take_job_and_die(conn, origin, worker=DEAD + "-2").id == taken.id
    assert await sweep.sweep() == [], "taken again: a fresh sighting"
    clock.advance(MARGIN_S - 1)
    assert await sweep.sweep() == []
    clock.advance(2)
    [action] = await sweep.sweep()
    assert (action.side, action.action) == ("a", "requeued")


async def test_missing_job_is_enqueued_after_the_margin(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    # The bot died between start_battle and the enqueue: no ui.jobs at all.
    battle = await enqueued_battle(study, conn, enqueue=False)
    sweep = sweeper(study, conn, clock)
    assert await sweep.sweep() == []
    clock.advance(MARGIN_S + 1)
    actions = sorted(await sweep.sweep(), key=lambda a: a.side)
    assert [(a.side, a.action) for a in actions] == [("a", "requeued"), ("b", "requeued")]
    for action, model in zip(actions, (battle.model_a, battle.model_b), strict=True):
        request = JobRequest.from_dict(Job.fetch(action.job_id, connection=conn).args[0])
        assert (request.battle_id, request.side, request.model_id) == (
            battle.battle_id,
            action.side,
            model,
        )
        assert request.audio_format == "ogg"
        assert request.audio_key == f"parley:audio:{battle.battle_id}"
    record = json.loads(conn.hget(keys.sweeper_battle(battle.battle_id), "a"))
    assert record["attempt"] == 1
    assert record["job_id"] == actions[0].job_id
    assert conn.ttl(keys.sweeper_battle(battle.battle_id)) > 0


async def test_deleted_job_is_enqueued_again(study: Study, conn: redis.Redis, clock: Clock) -> None:
    battle = await enqueued_battle(study, conn)
    Job.fetch(battle.ui["jobs"][1], connection=conn).delete()
    sweep = sweeper(study, conn, clock)
    clock.advance(MARGIN_S + 1)
    [action] = await sweep.sweep()
    assert (action.side, action.action) == ("b", "requeued")
    assert "gone" in action.reason


async def test_a_job_that_waits_too_long_fails_without_requeue(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    battle = await enqueued_battle(study, conn)
    sweep = sweeper(study, conn, clock, max_queue_wait_s=600)
    clock.advance(601)
    actions = sorted(await sweep.sweep(), key=lambda a: a.side)
    assert [(a.side, a.action) for a in actions] == [("a", "failed"), ("b", "failed")]
    assert {r.error_kind for r in results(conn)} == {"timeout"}
    # Cancelled: a worker that comes back later does not answer them.
    for job_id in battle.ui["jobs"]:
        assert Job.fetch(job_id, connection=conn).get_status() == JobStatus.CANCELED
    assert Queue(queue_name(battle.model_a), connection=conn).count == 0


async def test_a_hung_job_past_its_timeout_is_requeued(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    battle = await enqueued_battle(study, conn)
    start_job_and_die(conn, queue_name(battle.model_b), worker="hung", heartbeat_at=clock.now)
    sweep = sweeper(study, conn, clock)
    clock.advance(TIMEOUT_S + MARGIN_S - 1)
    beat(conn, "hung", clock.now)
    assert await sweep.sweep() == []
    clock.advance(2)
    beat(conn, "hung", clock.now)
    [action] = await sweep.sweep()
    assert (action.side, action.action) == ("b", "requeued")
    assert "past its timeout" in action.reason


async def test_answered_and_failed_sides_are_not_swept(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    battle = await enqueued_battle(study, conn)
    reply = ResultMessage(
        battle_id=battle.battle_id,
        side="a",
        model_id=battle.model_a,
        reply="hello",
        transcript=None,
        timings={"total": 1.0},
    )
    await study.record_reply(reply)
    Job.fetch(battle.ui["jobs"][0], connection=conn).delete()
    clock.advance(MARGIN_S + 1)
    # Side a has its reply (its job gone is no matter); side b still waits in its queue.
    assert await sweeper(study, conn, clock).sweep() == []


async def test_a_malformed_record_does_not_stop_the_other_battles(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    first = await enqueued_battle(study, conn, enqueue=False)
    conn.hset(keys.sweeper_battle(first.battle_id), "a", b"{not json")
    await study.consent(1002, "1")
    second = await study.start_battle(1002, AUDIO, 3.0, "ogg")
    clock.advance(MARGIN_S + 1)
    actions = await sweeper(study, conn, clock).sweep()
    assert {(a.battle_id, a.side) for a in actions} == {
        (first.battle_id, "b"),
        (second.battle_id, "a"),
        (second.battle_id, "b"),
    }


def test_bad_settings_are_refused(conn: redis.Redis) -> None:
    with pytest.raises(ValueError, match="job_timeout_s must be positive, got 0"):
        Sweeper(None, conn, job_timeout_s=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval_s must be positive, got -1"):
        Sweeper(None, conn, job_timeout_s=10, interval_s=-1)  # type: ignore[arg-type]


async def test_a_finished_job_waiting_for_the_bot_is_not_run_again(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    """A backlog (or a bot that is down) leaves a finished job's result unread on the stream:
    re-enqueueing it would only run the model twice."""
    battle = await enqueued_battle(study, conn)
    job = Job.fetch(battle.ui["jobs"][0], connection=conn)
    job.ended_at = datetime.fromtimestamp(clock.now, UTC)
    job.save()
    job.set_status(JobStatus.FINISHED)
    sweep = sweeper(study, conn, clock, max_queue_wait_s=600)
    clock.advance(MARGIN_S + 60)
    assert [a for a in await sweep.sweep() if a.side == "a"] == []
    assert Queue(queue_name(battle.model_a), connection=conn).count == 1  # only side b waits
    clock.advance(600)
    actions = {a.side: a for a in await sweep.sweep()}
    assert actions["a"].action == "failed"
    assert "never reached the study" in actions["a"].reason


async def test_a_slot_of_a_concurrent_worker_is_judged_by_its_process_heartbeat(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    """`--concurrency N`: slot k runs jobs as `<name>~k` and the process beats as `<name>`."""
    battle = await enqueued_battle(study, conn)
    sweep = sweeper(study, conn, clock)
    slot = f"{DEAD}~3"
    start_job_and_die(conn, queue_name(battle.model_a), worker=slot, heartbeat_at=None)
    beat(conn, DEAD, clock.now)
    assert await sweep.sweep() == [], "the process is alive, so is its slot"
    clock.advance(16)  # the process's heartbeat is stale: every slot of it is dead
    [action] = await sweep.sweep()
    assert (action.battle_id, action.side, action.action) == (battle.battle_id, "a", "requeued")
    assert slot in action.reason


async def test_a_side_no_live_worker_serves_fails_after_the_short_wait(
    study: Study, conn: redis.Redis, clock: Clock
) -> None:
    """Participants are not left waiting half an hour for a model nobody serves: its side fails
    `unserved_wait_s` after the battle; a model a live worker serves keeps waiting."""
    battle = await enqueued_battle(study, conn)
    sweep = sweeper(study, conn, clock, unserved_wait_s=120.0)
    serving = WorkerEntry(
        "serves-b", "test", 1, (battle.model_b,), started_at=0.0, heartbeat_at=clock.now
    )
    heartbeat.write(conn, serving)
    clock.advance(100)
    heartbeat.write(conn, dataclasses.replace(serving, heartbeat_at=clock.now))
    assert await sweep.sweep() == []
    clock.advance(30)
    heartbeat.write(conn, dataclasses.replace(serving, heartbeat_at=clock.now))
    [action] = await sweep.sweep()
    assert (action.battle_id, action.side, action.action) == (battle.battle_id, "a", "failed")
    assert f"no live worker serves model {battle.model_a!r}" in action.reason
    [failure] = results(conn)
    assert failure.side == "a"
    assert "no live worker" in (failure.error or "")
