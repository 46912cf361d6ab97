"""Rebuild battles and participants from the event stream alone (pure functions).

The stream `keys.EVENTS` is the audit log; these functions show it is enough to rebuild the
records, and are what a recovery from a damaged store would run. They read the typed events of
contract.events, the same objects the writers hand to the Lua scripts (lua.py), and apply each
script's rule to them. Discord references (`ui`) are not in events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from contract.events import (
    BattleStarted,
    Blocked,
    Commented,
    Consented,
    DemographicsSet,
    Event,
    LossReasonGiven,
    ReplyReceived,
    TurnStarted,
    TurnTranscribed,
    Unblocked,
    Voted,
    Withdrawn,
    read_event,
)
from contract.records import (
    Battle,
    BattleStatus,
    Demographics,
    Participant,
    ParticipantStatus,
    Turn,
    fmt_time,
)


def _time(value: float) -> float:
    """Times as stored in a record's fields: text with microseconds."""
    return float(fmt_time(value))


def decode_events(entries: Iterable[tuple[bytes, Mapping[bytes, bytes]]]) -> list[Event]:
    """XRANGE entries of the event stream as typed events."""
    return [read_event(fields) for _, fields in entries]


def replay_battles(events: Iterable[Event]) -> dict[str, Battle]:
    battles: dict[str, Battle] = {}
    for event in events:
        if isinstance(event, BattleStarted):
            battles[event.battle_id] = Battle(
                battle_id=event.battle_id,
                participant=event.participant,
                model_a=event.model_a,
                model_b=event.model_b,
                status=BattleStatus.QUEUED,
                strategy=event.strategy,
                created_at=_time(event.created_at),
                audio_ref=event.audio_ref,
                audio_seconds=event.audio_seconds,
                reply_mode=event.reply_mode,
                turns=(
                    Turn(
                        number=1,
                        audio_ref=event.audio_ref,
                        audio_seconds=event.audio_seconds,
                        started_at=_time(event.created_at),
                    ),
                ),
            )
        elif isinstance(event, Withdrawn):
            battles = {k: b for k, b in battles.items() if b.participant != event.participant}
        elif isinstance(event, BattleEvent) and event.battle_id in battles:
            battles[event.battle_id] = _apply(battles[event.battle_id], event)
    return battles


BattleEvent = ReplyReceived | Voted | Commented | TurnStarted | TurnTranscribed | LossReasonGiven


def _with_last_turn(battle: Battle, **changes: Any) -> tuple[Turn, ...]:
    return (*battle.turns[:-1], dataclasses.replace(battle.turns[-1], **changes))


def _apply(battle: Battle, event: BattleEvent) -> Battle:
    # Hash fields hold times rounded to microseconds; JSON inside them (replies, comments) the
    # clock's own float.
    at = _time(event.at)
    if isinstance(event, ReplyReceived):
        reply = event.reply()
        replies = {**battle.replies, reply.side: reply}
        changes: dict[str, Any] = {"replies": replies}
        if event.leak_flag and event.leak_flag not in battle.flags:
            changes["flags"] = (*battle.flags, event.leak_flag)
        if reply.error is not None:
            changes["flags"] = (*changes.get("flags", battle.flags), event.error_flag)
            if battle.status is BattleStatus.QUEUED:
                changes["status"] = BattleStatus.FAILED
        elif battle.status is BattleStatus.QUEUED and len(replies) == 2:
            changes.update(status=BattleStatus.ANSWERED, answered_at=at)
        changes["turns"] = _with_last_turn(
            battle, replies=replies, answered_at=changes.get("answered_at", battle.answered_at)
        )
        return dataclasses.replace(battle, **changes)
    if isinstance(event, TurnStarted):
        turn = Turn(
            number=event.turn,
            audio_ref=event.audio_ref,
            audio_seconds=event.audio_seconds,
            started_at=at,
        )
        return dataclasses.replace(
            battle,
            status=BattleStatus.QUEUED,
            replies={},
            answered_at=None,
            turn=event.turn,
            turns=(*battle.turns, turn),
        )
    if isinstance(event, TurnTranscribed):
        turns = tuple(
            dataclasses.replace(t, transcript=event.text) if t.number == event.turn else t
            for t in battle.turns
        )
        return dataclasses.replace(battle, turns=turns)
    if isinstance(event, LossReasonGiven):
        return dataclasses.replace(battle, loss_reason=event.reason)
    if isinstance(event, Voted):
        answered = battle.answered_at if battle.answered_at is not None else at
        return dataclasses.replace(
            battle,
            status=BattleStatus.VOTED,
            winner=event.winner,
            voted_at=at,
            revealed_at=at,
            vote_delay_s=_time(at - answered),
            flags=(*battle.flags, *(f for f in event.flags if f not in battle.flags)),
        )
    return dataclasses.replace(battle, comments=(*battle.comments, event.comment()))


def replay_participants(events: Iterable[Event]) -> dict[str, Participant]:
    people: dict[str, Participant] = {}
    for event in events:
        if not isinstance(event, Consented | DemographicsSet | Blocked | Unblocked | Withdrawn):
            continue
        pseudonym = event.participant
        at = _time(event.at)
        current = people.get(pseudonym) or Participant(
            pseudonym=pseudonym,
            status=ParticipantStatus.ACTIVE,
            consent_version=None,
            consented_at=None,
            demographics=Demographics(),
            joined_at=at,
        )
        if isinstance(event, Consented):
            current = dataclasses.replace(current, consent_version=event.version, consented_at=at)
        elif isinstance(event, DemographicsSet):
            current = dataclasses.replace(current, demographics=event.demographics)
        elif isinstance(event, Blocked):
            current = dataclasses.replace(
                current, status=ParticipantStatus.BLOCKED, blocked_reason=event.reason or None
            )
        elif isinstance(event, Unblocked):
            current = dataclasses.replace(
                current, status=ParticipantStatus.ACTIVE, blocked_reason=None
            )
        else:  # withdrawn: only the record that they withdrew, and when
            current = Participant(
                pseudonym=pseudonym,
                status=ParticipantStatus.WITHDRAWN,
                consent_version=None,
                consented_at=None,
                demographics=Demographics(),
                joined_at=at,
                withdrawn_at=at,
            )
        people[pseudonym] = current
    return people
