"""Withdrawal leaves nothing of the participant but the record that they withdrew, and when."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import redis.asyncio as aioredis

from bot.core import Demographics, ParticipantStatus, Refused, Winner
from bot.core.study import Study
from bot.export import export_battles, export_participants
from contract import keys
from contract.keys import PARTIALS_STREAM, RESULTS_STREAM, audio_key
from tests.core.helpers import AUDIO, T0, Clock, answered_battle, result_for

LEAVER, STAYER = 1001, 2002


async def _all_redis_bytes(client: aioredis.Redis) -> bytes:
    """Every key name and value in the db, flattened, to search for traces."""
    parts: list[bytes] = []
    async for key in client.scan_iter(count=1000):
        parts.append(key)
        kind = (await client.type(key)).decode()
        if kind == "string":
            parts.append(await client.get(key) or b"")
        elif kind == "hash":
            parts += [x for kv in (await client.hgetall(key)).items() for x in kv]
        elif kind == "set":
            parts += list(await client.smembers(key))
        elif kind == "zset":
            parts += list(await client.zrange(key, 0, -1))
        elif kind == "list":
            parts += list(await client.lrange(key, 0, -1))
        elif kind == "stream":
            for _, fields in await client.xrange(key):
                parts += [x for kv in fields.items() for x in kv]
    return b"\n".join(parts)


async def _make_history(study: Study, clock: Clock, client: aioredis.Redis) -> list[str]:
    """The leaver has a voted, a commented-queued and a failed battle; the stayer one vote."""
    voted = await answered_battle(study, clock, user=LEAVER)
    await study.comment(LEAVER, voted.battle_id, "secret opinion of the leaver")
    await study.vote(LEAVER, voted.battle_id, Winner.MODEL_A)
    await study.set_demographics(LEAVER, Demographics(age_band="35-44", country="Narnia"))
    clock.advance(30)
    queued = await study.start_battle(LEAVER, AUDIO, 2.0, "wav")
    await study.comment(LEAVER, queued.battle_id, "another leaver remark")
    clock.advance(30)
    failed = await study.start_battle(LEAVER, AUDIO, 2.0, "ogg")
    await study.record_reply(result_for(failed, "a", error="boom"))
    # What a worker would have left in its streams about the leaver's battles.
    await client.xadd(RESULTS_STREAM, result_for(voted, "a").to_fields())
    await client.xadd(PARTIALS_STREAM, {"battle_id": queued.battle_id, "side": "a", "text": "pa"})
    kept = await answered_battle(study, clock, user=STAYER)
    await study.vote(STAYER, kept.battle_id, Winner.TIE)
    await client.xadd(RESULTS_STREAM, result_for(kept, "a").to_fields())
    return [voted.battle_id, queued.battle_id, failed.battle_id, kept.battle_id]


async def test_withdrawal_leaves_only_the_withdrawal_record(
    study: Study, clock: Clock, redis_client: aioredis.Redis, data_dir: Path, tmp_path: Path
) -> None:
    ids = await _make_history(study, clock, redis_client)
    leaver_ids, kept_id = ids[:3], ids[3]
    leaver = study.pseudonym(LEAVER)
    clock.advance(100)
    await study.withdraw(LEAVER)

    everything = await _all_redis_bytes(redis_client)
    for battle_id in leaver_ids:
        assert battle_id.encode() not in everything
    for trace in (b"secret opinion", b"another leaver", b"Narnia", b'"35-44"'):
        assert trace not in everything
    # The pseudonym survives only in the participant record and the withdrawal event.
    holders = [k async for k in redis_client.scan_iter() if leaver.encode() in k]
    assert holders == [keys.participant(leaver).encode()]
    assert await redis_client.hgetall(keys.participant(leaver)) == {
        b"pseudonym": leaver.encode(),
        b"status": b"withdrawn",
        b"withdrawn_at": f"{T0 + 2 + 60 + 2 + 100:.6f}".encode(),
    }
    leaver_events = [
        f[b"type"]
        for _, f in await redis_client.xrange(keys.EVENTS)
        if json.loads(f[b"data"]).get("participant") == leaver
    ]
    assert leaver_events == [b"withdrawn"]
    for battle_id in leaver_ids:
        assert await redis_client.exists(audio_key(battle_id)) == 0
    assert [p.name for p in (data_dir / "audio").iterdir()] == [f"{kept_id}.ogg"]
    assert await redis_client.xlen(RESULTS_STREAM) == 1
    assert await redis_client.xlen(PARTIALS_STREAM) == 0

    p = await study.participant(LEAVER)
    assert p is not None
    assert (p.status, p.withdrawn_at, p.consent_version) == (
        ParticipantStatus.WITHDRAWN,
        T0 + 164,
        None,
    )
    battles = tmp_path / "b.csv"
    people = tmp_path / "p.csv"
    assert await export_battles(study, battles) == 1
    await export_participants(study, people)
    assert pd.read_csv(battles)["battle_id"].tolist() == [kept_id]
    rows = pd.read_csv(people).set_index("participant")
    assert rows.loc[leaver, "status"] == "withdrawn"
    assert pd.isna(rows.loc[leaver, "country"])
    assert "Narnia" not in people.read_text()

    # The stayer's data and the derived counts are intact and consistent.
    stayer_battle = await study.battle(kept_id)
    assert stayer_battle is not None
    assert stayer_battle.winner is Winner.TIE
    summary = await study.summary()
    assert summary["battles_by_status"] == {"voted": 1}
    assert sum(summary["votes_per_pair"].values()) == 1
    assert sum(summary["battles_per_pair"].values()) == 1


async def test_withdrawn_participant_cannot_come_back(study: Study, clock: Clock) -> None:
    battle = await answered_battle(study, clock, user=LEAVER)
    await study.withdraw(LEAVER)
    await study.withdraw(LEAVER)  # twice is fine
    for call in (
        study.consent(LEAVER, "1"),
        study.check_eligibility(LEAVER),
        study.start_battle(LEAVER, AUDIO, 1.0, "ogg"),
    ):
        with pytest.raises(Refused) as info:
            await call
        assert info.value.code == "withdrawn"
    with pytest.raises(Refused) as info:
        await study.vote(LEAVER, battle.battle_id, Winner.TIE)
    assert info.value.code == "no_such_battle"
    # A worker result arriving after the withdrawal finds nothing to write into.
    with pytest.raises(Refused) as info:
        await study.record_reply(result_for(battle, "a"))
    assert info.value.code == "no_such_battle"
    assert await study.battle(battle.battle_id) is None
    data = await study.my_data(LEAVER)
    assert data["battles"] == []
    assert data["participant"]["status"] == "withdrawn"


async def test_late_result_and_partials_are_forgotten(
    study: Study, clock: Clock, redis_client: aioredis.Redis
) -> None:
    """What the workers publish after a withdrawal (the listener calls `forget_battle`)."""
    await answered_battle(study, clock, user=LEAVER)
    clock.advance(30)
    battle = await study.start_battle(LEAVER, AUDIO, 2.0, "ogg")
    stayer = await answered_battle(study, clock, user=STAYER)
    await study.withdraw(LEAVER)
    late = dataclasses.replace(
        result_for(battle, "b", reply="late secret reply"), transcript="late words said"
    )
    await redis_client.xadd(
        PARTIALS_STREAM, {"battle_id": battle.battle_id, "side": "b", "text": "late sec"}
    )
    await redis_client.xadd(RESULTS_STREAM, late.to_fields())
    await redis_client.xadd(RESULTS_STREAM, result_for(stayer, "a").to_fields())
    with pytest.raises(Refused):
        await study.record_reply(late)
    assert await study.forget_battle(battle.battle_id) == 2
    everything = await _all_redis_bytes(redis_client)
    for trace in (b"late sec", b"late words said", battle.battle_id.encode()):
        assert trace not in everything
    assert await redis_client.xlen(RESULTS_STREAM) == 1  # the stayer's result stays
    with pytest.raises(ValueError, match="exists"):
        await study.forget_battle(stayer.battle_id)
