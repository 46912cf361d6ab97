"""Typed events of the audit stream: round trips, the stored format, and replay from them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bot.core.replay import decode_events, replay_battles, replay_participants
from contract.events import (
    EVENT_TYPES,
    BattleStarted,
    Blocked,
    Commented,
    ConfigChanged,
    Consented,
    DemographicsSet,
    Event,
    LossReasonGiven,
    ReplyReceived,
    StreamEvent,
    TurnStarted,
    TurnTranscribed,
    Unblocked,
    Voted,
    Withdrawn,
    read_event,
)
from contract.protocol import ResultMessage
from contract.records import (
    Battle,
    BattleStatus,
    Comment,
    Demographics,
    Participant,
    ParticipantStatus,
    Reply,
    Strategy,
    StudyState,
    Turn,
    Winner,
)

P = "aac7534e8cc91ee0"
BID = "0000000000000001"
T = 1795780800.1234567


def _result(side: str = "a", error: str | None = None) -> ResultMessage:
    return ResultMessage(
        battle_id=BID,
        side=side,  # type: ignore[arg-type]
        model_id="delta" if side == "a" else "gamma",
        reply=None if error else "héllo",
        transcript=None if error else "what is the weather",
        timings={"total": 1.5, "first_token": 0.4},
        error=error,
        error_kind="timeout" if error else None,
        job_id=f"job-{side}",
        worker="w1",
        finished_at=1795780800.0,
    )


# One of each type, with awkward values: non-ASCII text, None fields, whole-number limits.
EXAMPLES: list[Event] = [
    Consented(participant=P, at=T, version="1"),
    DemographicsSet(
        participant=P, at=T, demographics=Demographics(age_band="18-24", country="Ünited")
    ),
    Blocked(participant=P, at=T, reason="späm", by="mod"),
    Unblocked(participant=P, at=T, by="mod"),
    Withdrawn(participant=P, at=T),
    ConfigChanged(
        by="parley",
        at=T,
        state=StudyState.OPEN,
        strategy=Strategy.UNIFORM,
        roster=("alpha", "beta"),
        limits={"daily_quota": 20, "min_seconds_between": 20.0},
    ),
    ConfigChanged(by="mod", at=T, limits={"min_seconds_between": 0}),
    ConfigChanged(by="mod", at=T, roster=()),
    BattleStarted(
        battle_id=BID,
        participant=P,
        model_a="delta",
        model_b="gamma",
        strategy=Strategy.BALANCED,
        created_at=1795780800.123457,
        audio_ref=f"audio/{BID}.ogg",
        audio_format="ogg",
        audio_seconds=3.25,
        audio_bytes=1028,
        at=T,
    ),
    ReplyReceived(result=_result("a"), participant=P, at=T),
    ReplyReceived(result=_result("b", error="boom"), participant=P, at=T),
    Voted(battle_id=BID, participant=P, winner=Winner.BOTH_BAD, at=T),
    Commented(battle_id=BID, participant=P, text="first é", at=T),
    Commented(battle_id=BID, participant=P, text="spoken é", at=T, source="voice"),
    TurnStarted(
        battle_id=BID,
        participant=P,
        turn=2,
        audio_ref=f"audio/{BID}.t2-ab12.ogg",
        audio_format="ogg",
        audio_seconds=2.5,
        audio_bytes=900,
        at=T,
    ),
    TurnTranscribed(battle_id=BID, participant=P, turn=1, text="wie geht's é", at=T),
    LossReasonGiven(battle_id=BID, participant=P, reason="too_slow", at=T),
]


def test_every_event_type_has_an_example() -> None:
    assert {type(e) for e in EXAMPLES} == set(EVENT_TYPES.values())
    assert set(EVENT_TYPES) == {cls.TYPE for cls in EVENT_TYPES.values()}


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(event: StreamEvent) -> None:
    fields = event.to_fields()
    assert set(fields) == {"type", "data"}
    assert fields["type"] == event.TYPE
    assert read_event(fields) == event
    # As XRANGE returns them: bytes.
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    assert read_event(raw) == event
    assert type(event).from_fields(raw) == event
    assert json.loads(fields["data"])["at"] == T


# Entries as the previous version of the core wrote them (copied from a real stream).
STORED = [
    ("consent", '{"participant": "aac7534e8cc91ee0", "at": 1795780800.1234567, "version": "1"}'),
    (
        "config",
        '{"by": "parley", "at": 1795780800.1234567, "state": "open", "strategy": "uniform", '
        '"roster": ["alpha", "beta", "delta", "gamma"], "limits": {"daily_quota": 20, '
        '"min_seconds_between": 20.0, "audio_max_seconds": 60.0, "audio_max_bytes": 8000000, '
        '"comment_max_chars": 1000, "pair_target": 50}}',
    ),
    (
        "config",
        '{"by": "mod", "at": 1795780805.45679, "limits": {"min_seconds_between": 0, '
        '"audio_max_seconds": 30}}',
    ),
    ("config", '{"by": "mod", "at": 1795780805.45679, "strategy": "balanced"}'),
    ("config", '{"by": "mod", "at": 1795780805.45679, "roster": ["alpha", "beta", "gamma"]}'),
    ("config", '{"by": "mod", "at": 1795780807.45679, "state": "paused"}'),
    (
        "battle_started",
        '{"battle_id": "0000000000000001", "participant": "aac7534e8cc91ee0", "model_a": '
        '"delta", "model_b": "gamma", "strategy": "uniform", "created_at": "1795780800.123457", '
        '"audio_ref": "audio/0000000000000001.ogg", "audio_format": "ogg", "audio_seconds": '
        '"3.0", "audio_bytes": "1028", "at": 1795780800.1234567}',
    ),
    (
        "reply",
        '{"battle_id": "0000000000000001", "side": "a", "model_id": "delta", "reply": '
        '"hi on side a", "transcript": "what is the weather", "timings": {"total": 1.5, '
        '"first_token": 0.4}, "error": null, "error_kind": null, "job_id": "job-a", "worker": '
        '"w1", "finished_at": 1795780800.0, "participant": "aac7534e8cc91ee0", "at": '
        "1795780802.1234567}",
    ),
    (
        "reply",
        '{"battle_id": "0000000000000001", "side": "b", "model_id": "gamma", "reply": null, '
        '"transcript": null, "timings": {"total": 1.5, "first_token": 0.4}, "error": "boom", '
        '"error_kind": "permanent", "job_id": "job-b", "worker": "w1", "finished_at": '
        '1795780800.0, "participant": "aac7534e8cc91ee0", "at": 1795780805.45679}',
    ),
    (
        "comment",
        '{"battle_id": "0000000000000001", "participant": "aac7534e8cc91ee0", "text": '
        '"first é", "at": 1795780802.1234567}',
    ),
    (
        "vote",
        '{"battle_id": "0000000000000001", "participant": "aac7534e8cc91ee0", "winner": "tie", '
        '"at": 1795780805.45679}',
    ),
    (
        "demographics",
        '{"participant": "aac7534e8cc91ee0", "at": 1795780805.45679, "demographics": '
        '{"age_band": "18-24", "gender": null, "first_language": null, "country": '
        '"\\u00dcnited"}}',
    ),
    ("withdrawn", '{"participant": "c78932bb64674550", "at": 1795780807.45679}'),
    (
        "blocked",
        '{"participant": "a321af76bcb00008", "at": 1795780807.45679, "reason": "sp\\u00e4m", '
        '"by": "mod"}',
    ),
    ("unblocked", '{"participant": "f3fba559344e3133", "at": 1795780807.45679, "by": "mod"}'),
]


@pytest.mark.parametrize(
    ("kind", "data"), STORED, ids=[f"{k}-{i}" for i, (k, _) in enumerate(STORED)]
)
def test_stored_entries_read_and_write_back_byte_for_byte(kind: str, data: str) -> None:
    event = read_event({b"type": kind.encode(), b"data": data.encode()})
    assert kind == event.TYPE
    assert event.to_fields() == {"type": kind, "data": data}


def test_stored_entries_read_as_typed_values() -> None:
    events = decode_events((b"1-0", {b"type": k.encode(), b"data": d.encode()}) for k, d in STORED)
    started = events[6]
    assert isinstance(started, BattleStarted)
    assert (started.created_at, started.audio_seconds, started.audio_bytes) == (
        1795780800.123457,
        3.0,
        1028,
    )
    assert started.strategy is Strategy.UNIFORM
    limits = events[2]
    assert isinstance(limits, ConfigChanged)
    assert limits.limits == {"min_seconds_between": 0, "audio_max_seconds": 30}
    assert (limits.state, limits.strategy, limits.roster) == (None, None, None)
    failed = events[8]
    assert isinstance(failed, ReplyReceived)
    assert failed.error_flag == "error_b:permanent"
    assert failed.reply() == Reply(
        side="b",
        model_id="gamma",
        text=None,
        transcript=None,
        timings={"total": 1.5, "first_token": 0.4},
        error="boom",
        received_at=1795780805.45679,
    )
    assert isinstance(events[10], Voted)
    assert events[10].winner is Winner.TIE


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "nope", "data": "{}"}, "unknown event type 'nope'"),
        ({"data": "{}"}, "unknown event type None"),
        ({"type": "vote"}, "without a 'data' field"),
        ({"type": "vote", "data": "[1]"}, "not a JSON object"),
        ({"type": "vote", "data": '{"battle_id": "x", "at": 1}'}, "cannot read a 'vote' event"),
        (
            {
                "type": "vote",
                "data": '{"battle_id": "x", "participant": "p", "winner": "a", "at": 1}',
            },
            "cannot read a 'vote' event",
        ),
        (
            {"type": "reply", "data": '{"participant": "p", "at": 1, "surprise": 2}'},
            "surprise",
        ),
    ],
)
def test_malformed_entries_fail_loudly(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_event(fields)


def test_from_fields_checks_the_type() -> None:
    with pytest.raises(ValueError, match="expected a Voted event, got a 'consent' event"):
        Voted.from_fields(Consented(participant=P, at=T, version="1").to_fields())


def test_replay_from_typed_events() -> None:
    started = EXAMPLES[8]
    assert isinstance(started, BattleStarted)
    other = dataclasses.replace(started, battle_id="0000000000000002", participant="q" * 16)
    events: list[Event] = [
        Consented(participant=P, at=T, version="1"),
        started,
        other,
        ReplyReceived(result=_result("a"), participant=P, at=T + 1),
        ReplyReceived(result=_result("b"), participant=P, at=T + 2),
        Voted(battle_id=BID, participant=P, winner=Winner.MODEL_B, at=T + 5),
        Commented(battle_id=BID, participant=P, text="ok", at=T + 6),
        Commented(battle_id="ffffffffffffffff", participant=P, text="gone", at=T + 6),
        Blocked(participant=P, at=T + 7, reason="", by="mod"),
        Withdrawn(participant="q" * 16, at=T + 8),
    ]
    battles = replay_battles(events)
    assert list(battles) == [BID]
    replies = {
        "a": dataclasses.replace(_reply(_result("a")), received_at=T + 1),
        "b": dataclasses.replace(_reply(_result("b")), received_at=T + 2),
    }
    assert battles[BID] == Battle(
        battle_id=BID,
        participant=P,
        model_a="delta",
        model_b="gamma",
        status=BattleStatus.VOTED,
        strategy=Strategy.BALANCED,
        created_at=1795780800.123457,
        audio_ref=f"audio/{BID}.ogg",
        audio_seconds=3.25,
        replies=replies,
        answered_at=1795780802.123457,
        winner=Winner.MODEL_B,
        voted_at=1795780805.123457,
        revealed_at=1795780805.123457,
        vote_delay_s=3.0,
        comments=(Comment("ok", T + 6),),
        turns=(
            Turn(
                number=1,
                audio_ref=f"audio/{BID}.ogg",
                audio_seconds=3.25,
                started_at=1795780800.123457,
                replies=replies,
                answered_at=1795780802.123457,
            ),
        ),
    )
    people = replay_participants(events)
    assert people[P] == Participant(
        pseudonym=P,
        status=ParticipantStatus.BLOCKED,
        consent_version="1",
        consented_at=1795780800.123457,
        demographics=Demographics(),
        joined_at=1795780800.123457,
        blocked_reason=None,
    )
    assert people["q" * 16].status is ParticipantStatus.WITHDRAWN


def test_a_failed_reply_fails_a_queued_battle_in_replay() -> None:
    started = EXAMPLES[8]
    events: list[Event] = [
        started,  # type: ignore[list-item]
        ReplyReceived(result=_result("b", error="boom"), participant=P, at=T + 1),
        ReplyReceived(result=_result("a"), participant=P, at=T + 2),
    ]
    battle = replay_battles(events)[BID]
    assert battle.status is BattleStatus.FAILED
    assert battle.flags == ("error_b:timeout",)
    assert set(battle.replies) == {"a", "b"}
    assert battle.answered_at is None


def _reply(result: ResultMessage) -> Reply:
    return ReplyReceived(result=result, participant=P, at=T).reply()
