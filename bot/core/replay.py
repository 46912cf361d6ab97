"""Rebuild battles and participants from the event stream alone (pure functions).

The stream `parley:events` is the audit log; these functions show it is enough to rebuild the
records, and are what a recovery from a damaged store would run. Each rule mirrors the Lua
script that wrote the event (scripts.py). Discord references (`ui`) are not in events.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from bot.core.codec import fmt_time
from contract.records import (
    Battle,
    BattleStatus,
    Comment,
    Demographics,
    Participant,
    ParticipantStatus,
    Reply,
    Strategy,
    Winner,
)

Event = tuple[str, Mapping[str, Any]]  # (type, data)


def _time(value: float | str) -> float:
    """Times as stored: text with microseconds."""
    return float(fmt_time(float(value)))


def decode_events(entries: Iterable[tuple[bytes, Mapping[bytes, bytes]]]) -> list[Event]:
    """XRANGE entries of `parley:events` as (type, data) pairs."""
    return [(f[b"type"].decode(), json.loads(f[b"data"])) for _, f in entries]


def replay_battles(events: Iterable[Event]) -> dict[str, Battle]:
    battles: dict[str, Battle] = {}
    for kind, data in events:
        if kind == "battle_started":
            battles[data["battle_id"]] = Battle(
                battle_id=data["battle_id"],
                participant=data["participant"],
                model_a=data["model_a"],
                model_b=data["model_b"],
                status=BattleStatus.QUEUED,
                strategy=Strategy(data["strategy"]),
                created_at=_time(data["created_at"]),
                audio_ref=data["audio_ref"],
                audio_seconds=float(data["audio_seconds"]),
            )
        elif kind == "withdrawn":
            battles = {k: b for k, b in battles.items() if b.participant != data["participant"]}
        elif data.get("battle_id") in battles:
            battle = battles[data["battle_id"]]
            battles[battle.battle_id] = _apply(battle, kind, data)
    return battles


def _apply(battle: Battle, kind: str, data: Mapping[str, Any]) -> Battle:
    # Hash fields hold times rounded to microseconds; JSON inside them (replies, comments) the
    # clock's own float.
    raw_at = float(data["at"])
    at = _time(raw_at)
    if kind == "reply":
        side = data["side"]
        reply = Reply(
            side=side,
            model_id=data["model_id"],
            text=data["reply"],
            transcript=data["transcript"],
            timings={k: float(v) for k, v in data["timings"].items()},
            error=data["error"],
            received_at=raw_at,
        )
        replies = {**battle.replies, side: reply}
        changes: dict[str, Any] = {"replies": replies}
        if reply.error is not None:
            changes["flags"] = (*battle.flags, f"error_{side}:{data['error_kind'] or 'unknown'}")
            if battle.status is BattleStatus.QUEUED:
                changes["status"] = BattleStatus.FAILED
        elif battle.status is BattleStatus.QUEUED and len(replies) == 2:
            changes.update(status=BattleStatus.ANSWERED, answered_at=at)
        return dataclasses.replace(battle, **changes)
    if kind == "vote":
        answered = battle.answered_at if battle.answered_at is not None else at
        return dataclasses.replace(
            battle,
            status=BattleStatus.VOTED,
            winner=Winner(data["winner"]),
            voted_at=at,
            revealed_at=at,
            vote_delay_s=_time(at - answered),
        )
    if kind == "comment":
        return dataclasses.replace(
            battle, comments=(*battle.comments, Comment(data["text"], raw_at))
        )
    return battle


def replay_participants(events: Iterable[Event]) -> dict[str, Participant]:
    people: dict[str, Participant] = {}
    for kind, data in events:
        pseudonym = data.get("participant")
        if pseudonym is None or kind not in _PARTICIPANT_EVENTS:
            continue
        at = _time(data["at"])
        current = people.get(pseudonym) or Participant(
            pseudonym=pseudonym,
            status=ParticipantStatus.ACTIVE,
            consent_version=None,
            consented_at=None,
            demographics=Demographics(),
            joined_at=at,
        )
        if kind == "consent":
            current = dataclasses.replace(current, consent_version=data["version"], consented_at=at)
        elif kind == "demographics":
            current = dataclasses.replace(
                current, demographics=Demographics(**data["demographics"])
            )
        elif kind == "blocked":
            current = dataclasses.replace(
                current, status=ParticipantStatus.BLOCKED, blocked_reason=data["reason"] or None
            )
        elif kind == "unblocked":
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


_PARTICIPANT_EVENTS = frozenset({"consent", "demographics", "blocked", "unblocked", "withdrawn"})
