"""The Lua scripts' named arguments and their typed call wrappers, alone and against Redis."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

import bot.core
from bot.core import lua
from bot.core.scripts import (
    DAILY_TTL_S,
    AddComment,
    AwaitReason,
    ChangeConfig,
    CheckEligibility,
    ContinueBattle,
    InitConfig,
    ReadBattles,
    RecordReply,
    ScriptCall,
    Scripts,
    SetLossReason,
    SetTranscript,
    SetUi,
    StartBattle,
    TakeReason,
    UpdateParticipant,
    Vote,
    Withdraw,
    battle_record,
)
from contract import keys
from contract.events import (
    BattleStarted,
    Commented,
    ConfigChanged,
    Consented,
    LossReasonGiven,
    ReplyReceived,
    TurnStarted,
    TurnTranscribed,
    Voted,
    Withdrawn,
    read_event,
)
from contract.keys import AUDIO_TTL_S
from contract.protocol import ResultMessage
from contract.records import Strategy, StudyState, Winner

P = "aac7534e8cc91ee0"
BID = "0123456789abcdef"
T = 1_795_780_800.25
DAY = "2026-11-27"
DAY_END = 1_795_824_000.0
AUDIO = b"OggS\x00\xff"

STARTED = BattleStarted(
    battle_id=BID,
    participant=P,
    model_a="beta",
    model_b="alpha",
    strategy=Strategy.UNIFORM,
    created_at=T,
    audio_ref=f"audio/{BID}.ogg",
    audio_format="ogg",
    audio_seconds=3.0,
    audio_bytes=len(AUDIO),
    at=T,
)
INITIAL = ConfigChanged(
    by="parley",
    at=T,
    state=StudyState.OPEN,
    strategy=Strategy.UNIFORM,
    roster=("alpha", "beta", "gamma"),
    limits={"daily_quota": 2, "min_seconds_between": 0},
)


def _result(side: str, model: str, error: str | None = None) -> ResultMessage:
    return ResultMessage(
        battle_id=BID,
        side=side,  # type: ignore[arg-type]
        model_id=model,
        reply=None if error else f"hi from {model}",
        transcript=None,
        timings={"total": 1.0},
        error=error,
        error_kind="timeout" if error else None,
    )


def _received(side: str, model: str, at: float, error: str | None = None) -> ReplyReceived:
    return ReplyReceived(result=_result(side, model, error), participant=P, at=at)


def _record_reply(received: ReplyReceived) -> RecordReply:
    return RecordReply(received=received, reply_json='{"r": 1}', day=DAY)


# One call of every wrapper; each must fill exactly its script's declared names.
CALLS: list[ScriptCall] = [
    CheckEligibility(pseudonym=P, day=DAY, now=T, day_end=DAY_END),
    StartBattle(started=STARTED, day=DAY, day_end=DAY_END, audio=AUDIO, ui={"ui.thread": "1"}),
    _record_reply(_received("a", "beta", T + 1)),
    SetUi(battle_id=BID, fields={"ui.thread": "1"}),
    ReadBattles(min_score="-inf", offset=0, count=10),
    Vote(voted=Voted(battle_id=BID, participant=P, winner=Winner.TIE, at=T), day=DAY),
    AddComment(
        commented=Commented(battle_id=BID, participant=P, text="é", at=T),
        comment_json="{}",
        max_comments=10,
    ),
    UpdateParticipant(
        event=Consented(participant=P, at=T, version="1"),
        fields={"consent_version": "1"},
        guard=("consent_version", "1"),
    ),
    Withdraw(withdrawn=Withdrawn(participant=P, at=T)),
    InitConfig(initial=INITIAL),
    ChangeConfig(change=ConfigChanged(by="mod", at=T, state=StudyState.PAUSED)),
    ContinueBattle(
        started=TurnStarted(
            battle_id=BID,
            participant=P,
            turn=2,
            audio_ref=f"audio/{BID}.t2-ab.ogg",
            audio_format="ogg",
            audio_seconds=1.5,
            audio_bytes=3,
            at=T,
        ),
        audio=AUDIO,
        default_max_turns=4,
        ui={"ui.message_id": '"1"'},
    ),
    SetTranscript(
        transcribed=TurnTranscribed(battle_id=BID, participant=P, turn=1, text="é", at=T)
    ),
    SetLossReason(given=LossReasonGiven(battle_id=BID, participant=P, reason="content", at=T)),
    AwaitReason(participant=P, battle_id=BID, value=f"{BID}|1", ttl_s=60),
    TakeReason(participant=P, battle_id=BID, value=f"{BID}|1", audio=AUDIO),
]


def test_every_script_has_a_wrapper() -> None:
    assert {call.SCRIPT.name for call in CALLS} == {s.name for s in lua.ALL}


@pytest.mark.parametrize("call", CALLS, ids=lambda c: type(c).__name__)
def test_wrappers_fill_every_declared_name(call: ScriptCall) -> None:
    script_keys, args = call.layout()
    assert len(script_keys) == len(call.SCRIPT.keys)
    assert len(args) >= len(call.SCRIPT.argv)
    # Every key is one of contract.keys' names, never spelled here.
    assert all(k.startswith(keys.NAMESPACE + ":") for k in script_keys)


@pytest.mark.parametrize("script", lua.ALL, ids=lambda s: s.name)
def test_sources_name_keys_and_argv(script: lua.LuaScript) -> None:
    source = script.source
    for i, name in enumerate(script.keys, 1):
        assert f"local {name}_key = KEYS[{i}]\n" in source
    for i, name in enumerate(script.argv, 1):
        assert f"local {name} = ARGV[{i}]\n" in source
    body = source.split("\n", len(script.keys) + len(script.argv))[-1]
    assert not re.search(r"(KEYS|ARGV)\[\d", body), "the body must use the names"


def test_start_battle_layout() -> None:
    call = CALLS[1]
    assert isinstance(call, StartBattle)
    script_keys, args = call.layout()
    assert script_keys == [
        keys.CONFIG,
        keys.ROSTER,
        keys.participant(P),
        keys.daily(P, DAY),
        keys.battle(BID),
        keys.BATTLES,
        keys.OPEN_BATTLES,
        keys.participant_battles(P),
        keys.PAIR_BATTLES,
        keys.STATUS_COUNTS,
        keys.EVENTS,
        keys.participant_events(P),
        keys.audio_key(BID),
    ]
    fields = STARTED.to_fields()
    record = battle_record(STARTED, DAY)
    assert args == [
        "1795780800.250000",
        "1795824000.000000",
        "beta",
        "alpha",
        "alpha|beta",
        BID,
        AUDIO,
        AUDIO_TTL_S,
        DAILY_TTL_S,
        "battle_started",
        fields["data"],
        *[x for kv in record.items() for x in kv],
        "ui.thread",
        "1",
    ]
    assert record["pair"] == "alpha|beta"
    assert record["status"] == "queued"
    assert record["created_at"] == "1795780800.250000"


def test_layout_refuses_missing_and_unexpected_names() -> None:
    script = lua.CHECK_ELIGIBILITY
    good_keys = {"config": "a", "roster": "b", "participant": "c", "daily": "d"}
    with pytest.raises(ValueError, match=r"argv: missing \['day_end'\], unexpected \['later'\]"):
        script.layout(good_keys, {"now": "1", "later": "2"})
    with pytest.raises(ValueError, match=r"keys: missing \['daily'\]"):
        script.layout({k: v for k, v in good_keys.items() if k != "daily"}, {})
    with pytest.raises(ValueError, match="takes no values past its named ARGV"):
        script.layout(good_keys, {"now": "1", "day_end": "2"}, ["extra"])


def test_script_names_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="bad or repeated"):
        lua.LuaScript(name="x", keys=("a",), argv=("a_key",), body="")
    with pytest.raises(ValueError, match="bad or repeated"):
        lua.LuaScript(name="x", keys=(), argv=("ARGV",), body="")


def test_the_first_config_must_be_whole() -> None:
    with pytest.raises(ValueError, match="the first config must set"):
        InitConfig(initial=ConfigChanged(by="parley", at=T, state=StudyState.OPEN))


def test_no_core_module_spells_a_key() -> None:
    core = Path(bot.core.__file__).parent
    for path in core.glob("*.py"):
        assert '"parley:' not in path.read_text(), f"{path.name} spells a Redis key by hand"


# ------------------------------------------------------------------ against Redis


async def _events(redis: aioredis.Redis) -> list[object]:
    return [read_event(fields) for _, fields in await redis.xrange(keys.EVENTS)]


async def test_config_scripts(redis_client: aioredis.Redis) -> None:
    scripts = Scripts(redis_client)
    assert await scripts.run(InitConfig(initial=INITIAL)) is True
    assert await scripts.run(InitConfig(initial=dataclasses.replace(INITIAL, at=T + 1))) is False
    config = await redis_client.hgetall(keys.CONFIG)
    assert config == {
        b"initialised_at": b"1795780800.250000",
        b"state": b"open",
        b"strategy": b"uniform",
        b"limit.daily_quota": b"2",
        b"limit.min_seconds_between": b"0.0",
        # It has been open: once closed it says "closed", not "not open yet".
        b"opened_at": b"1",
    }
    change = ConfigChanged(by="mod", at=T + 2, roster=("alpha", "gamma"), state=StudyState.PAUSED)
    assert await scripts.run(ChangeConfig(change=change)) is True
    assert await redis_client.smembers(keys.ROSTER) == {b"alpha", b"gamma"}
    assert (await redis_client.hget(keys.CONFIG, "state")) == b"paused"
    # A change without a roster leaves the roster alone.
    await scripts.run(ChangeConfig(change=ConfigChanged(by="mod", at=T + 3, state=StudyState.OPEN)))
    assert await redis_client.smembers(keys.ROSTER) == {b"alpha", b"gamma"}
    assert await _events(redis_client) == [
        INITIAL,
        change,
        ConfigChanged(by="mod", at=T + 3, state=StudyState.OPEN),
    ]


async def test_a_battle_through_its_scripts(redis_client: aioredis.Redis) -> None:
    scripts = Scripts(redis_client)
    await scripts.run(InitConfig(initial=INITIAL))
    check = CheckEligibility(pseudonym=P, day=DAY, now=T, day_end=DAY_END)
    assert (await scripts.run(check)).code == "no_consent"

    consented = Consented(participant=P, at=T, version="1")
    consent = UpdateParticipant(
        event=consented,
        fields={"consent_version": "1", "consented_at": "1795780800.250000"},
        guard=("consent_version", "1"),
    )
    outcome = await scripts.run(consent)
    assert (outcome.code, outcome.record["status"], outcome.record["joined_at"]) == (
        "changed",
        "active",
        "1795780800.250000",
    )
    assert (await scripts.run(consent)).code == "same"
    assert (await scripts.run(check)).detail == "2"

    start = StartBattle(started=STARTED, day=DAY, day_end=DAY_END, audio=AUDIO)
    outcome = await scripts.run(start)
    assert (outcome.code, outcome.detail) == ("ok", "1")
    assert decoded(await redis_client.hgetall(keys.battle(BID))) == start.record()
    assert await redis_client.get(keys.audio_key(BID)) == AUDIO
    assert await redis_client.ttl(keys.daily(P, DAY)) == DAILY_TTL_S

    assert await scripts.run(SetUi(battle_id=BID, fields={"ui.thread": "7"})) is True
    assert await scripts.run(SetUi(battle_id="f" * 16, fields={"ui.thread": "7"})) is False

    wrong = _record_reply(_received("a", "gamma", T + 1))
    outcome = await scripts.run(wrong)
    assert (outcome.code, outcome.detail) == ("mismatch", "beta")
    reply_a = _received("a", "beta", T + 1)
    assert (await scripts.run(_record_reply(reply_a))).code == "changed"
    assert (await scripts.run(_record_reply(reply_a))).code == "same"
    reply_b = _received("b", "alpha", T + 2)
    outcome = await scripts.run(_record_reply(reply_b))
    assert outcome.record["status"] == "answered"

    not_mine = Voted(battle_id=BID, participant="x" * 16, winner=Winner.TIE, at=T + 3)
    assert (await scripts.run(Vote(voted=not_mine, day=DAY))).code == "not_your_battle"
    voted = Voted(battle_id=BID, participant=P, winner=Winner.MODEL_A, at=T + 3)
    outcome = await scripts.run(Vote(voted=voted, day=DAY))
    assert (outcome.code, outcome.detail, outcome.record["winner"]) == ("ok", "1", "model_a")
    assert outcome.record["vote_delay_s"] == "1.000000"

    commented = Commented(battle_id=BID, participant=P, text="bien sûr", at=T + 4)
    comment = AddComment(commented=commented, comment_json='{"c": 1}', max_comments=1)
    assert (await scripts.run(comment)).record["comment:1"] == '{"c": 1}'
    assert (await scripts.run(comment)).code == "too_many_comments"

    rows = await scripts.run(ReadBattles(min_score="-inf", offset=0, count=10))
    assert [row[0] for row in rows] == [BID]

    # The events the scripts wrote are the typed events they were given.
    assert await _events(redis_client) == [
        INITIAL,
        consented,
        STARTED,
        reply_a,
        reply_b,
        voted,
        commented,
    ]

    withdrawn = Withdrawn(participant=P, at=T + 5)
    assert await scripts.run(Withdraw(withdrawn=withdrawn)) == {BID}
    assert await scripts.run(Withdraw(withdrawn=withdrawn)) == set()
    assert await redis_client.exists(keys.battle(BID), keys.audio_key(BID)) == 0
    assert await _events(redis_client) == [INITIAL, withdrawn]


def decoded(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}
