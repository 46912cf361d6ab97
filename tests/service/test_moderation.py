"""The moderators' use cases through the service: design, status with real RQ queues, export,
and one participant."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import redis

from bot.core import Study
from bot.service import StudyService
from bot.service.outcomes import (
    ClipMeta,
    DesignView,
    ModerationDone,
    Refusal,
    Started,
    StateSet,
    Withdrawn,
)
from contract import heartbeat, keys
from contract.heartbeat import WorkerEntry
from contract.records import Strategy, StudyConfig, StudyState, Winner
from tests.core.helpers import T0, Clock, answered_battle
from tests.service.conftest import tone

MOD = 9999


async def test_state_roster_strategy_and_limits(service: StudyService, study: Study) -> None:
    moderation = service.moderation
    state = await moderation.set_state(StudyState.PAUSED, MOD)
    assert isinstance(state, StateSet)
    assert state.config.state is StudyState.PAUSED
    assert state.changed
    again = await moderation.set_state(StudyState.PAUSED, MOD)
    assert again == StateSet(state.config, changed=False)
    refusal = await moderation.set_roster(["alpha", "nope"], MOD)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "unknown_model"
    design = await moderation.set_roster(["alpha", "beta"], MOD)
    assert isinstance(design, DesignView)
    assert sorted(design.config.roster) == ["alpha", "beta"]
    assert design.known == ["alpha", "beta", "gamma", "delta"]
    assert design.names["gamma"] == "Gamma"
    strategy = await moderation.set_strategy(Strategy.BALANCED, MOD)
    assert isinstance(strategy, StudyConfig)
    assert strategy.strategy is Strategy.BALANCED
    shown = await moderation.set_limits(MOD)
    assert isinstance(shown, DesignView)
    assert shown.config.limits.daily_quota == 20
    changed = await moderation.set_limits(MOD, daily_quota=3)
    assert isinstance(changed, DesignView)
    assert changed.config.limits.daily_quota == 3
    # The audit stream names the moderator by pseudonym only.
    events = await study.redis.xrange("parley:events")
    assert events
    for _, fields in events:
        text = b" ".join(fields.values()).decode()
        assert str(MOD) not in text


async def test_status_reads_queues_and_workers(
    service: StudyService, study: Study, rq_conn: redis.Redis
) -> None:
    await study.consent(1, "1")
    data = tone(1.0)
    started = await service.clips.take(1, ClipMeta("c.wav", "audio/wav", len(data)), data)
    assert isinstance(started, Started)
    heartbeat.write(
        rq_conn,
        WorkerEntry(
            name="w1", host="gpu1", pid=1, models=("alpha",), started_at=T0, heartbeat_at=T0 + 1e9
        ),
    )
    report = await service.moderation.status()
    battle = started.battle
    assert report.depths[battle.model_a] == 1
    assert report.depths[battle.model_b] == 1
    assert sum(report.depths.values()) == 2
    assert [w.name for w in report.workers] == ["w1"]
    assert report.oldest is not None
    assert report.oldest.model_id in (
        battle.model_a,
        battle.model_b,
    )
    assert report.summary == await study.summary()
    assert report.design.config == await study.config()
    # Only alpha has a live worker: the rest of the roster is named as unserved.
    roster = (await study.config()).roster
    assert report.unserved == [m for m in roster if m != "alpha"]


async def test_opening_names_the_models_no_live_worker_serves(
    service: StudyService, study: Study, rq_conn: redis.Redis
) -> None:
    await service.moderation.set_state(StudyState.CLOSED, 1)
    roster = list((await study.config()).roster)
    heartbeat.write(
        rq_conn,
        WorkerEntry(
            name="w1",
            host="gpu1",
            pid=1,
            models=(roster[0],),
            started_at=T0,
            heartbeat_at=T0 + 1e9,
        ),
    )
    opened = await service.moderation.set_state(StudyState.OPEN, 1)
    assert isinstance(opened, StateSet)
    assert opened.changed
    assert opened.unserved == roster[1:]
    closed = await service.moderation.set_state(StudyState.CLOSED, 1)
    assert isinstance(closed, StateSet)
    assert closed.unserved == [], "a closed study draws no model: nothing to warn about"


async def test_export_writes_under_the_data_dir(
    service: StudyService, study: Study, clock: Clock, data_dir: Path
) -> None:
    await answered_battle(study, clock)
    exported = await service.moderation.export("csv")
    assert exported.rows == 1
    assert exported.path.parent == data_dir / "exports"
    assert exported.path.name.startswith("battles-")
    assert exported.path.suffix == ".csv"
    assert exported.size == exported.path.stat().st_size
    assert len(pd.read_csv(exported.path)) == 1
    assert exported.participants == 1
    assert exported.voted == 0
    assert exported.flags == {}


async def test_one_participant(service: StudyService, study: Study) -> None:
    moderation = service.moderation
    await study.consent(5, "1")
    info = await moderation.info(5)
    assert info.pseudonym == study.pseudonym(5)
    assert info.data["participant"]["pseudonym"] == info.pseudonym
    assert await moderation.block(5, "spam", MOD) == ModerationDone(study.pseudonym(5))
    refusal = await service.clips.admit(5, [ClipMeta("v.ogg", None, 10, voice_message=True)])
    assert isinstance(refusal, Refusal)
    assert refusal.code == "blocked"
    assert await moderation.unblock(5, MOD) == ModerationDone(study.pseudonym(5))
    # Blocking someone who never joined is allowed: it keeps them from joining.
    assert await moderation.block(6, "spam", MOD) == ModerationDone(study.pseudonym(6))


async def test_status_shows_the_votes_still_needed(
    service: StudyService, study: Study, clock: Clock
) -> None:
    assert (await service.moderation.status()).gaps == []  # no vote yet: nothing to project
    await study.set_limits("mod", min_seconds_between=0, daily_quota=100)
    for user in range(10):
        battle = await answered_battle(study, clock, user=4000 + user)
        clock.advance(30)
        await study.vote(4000 + user, battle.battle_id, Winner.MODEL_A)
    gaps = (await service.moderation.status()).gaps
    roster = (await study.config()).roster
    assert len(gaps) == len(roster) - 1
    assert {g.upper for g in gaps} | {g.lower for g in gaps} == set(roster)
    assert all(g.votes_needed >= 0 for g in gaps)


async def test_withdrawing_someone_who_never_joined_is_refused(
    service: StudyService, study: Study
) -> None:
    moderation = service.moderation
    for outcome in (await moderation.withdrawable(77), await moderation.withdraw(77, MOD)):
        assert isinstance(outcome, Refusal)
        assert outcome.code == "not_a_participant"
    # Nothing was written: they can still join.
    assert await study.participant(77) is None
    refused = await service.participants.withdraw(77)
    assert isinstance(refused, Refusal)
    assert await study.participant(77) is None
    await service.participants.agree(77, "1")
    assert await moderation.withdrawable(77) == ModerationDone(study.pseudonym(77))
    assert await moderation.withdraw(77, MOD) == Withdrawn(study.pseudonym(77), None)
    again = await moderation.withdrawable(77)
    assert isinstance(again, Refusal)
    assert again.code == "already_withdrawn"


async def test_opening_needs_two_models(service: StudyService, study: Study) -> None:
    await study.set_state(StudyState.PAUSED, "mod")
    await study.redis.delete(keys.ROSTER)
    refused = await service.moderation.set_state(StudyState.OPEN, MOD)
    assert isinstance(refused, Refusal)
    assert "needs two models" in refused.message
    assert (await study.config()).state is StudyState.PAUSED
    single = await service.moderation.set_roster(["alpha"], MOD)
    assert isinstance(single, Refusal)
    assert "`alpha`" in single.message
