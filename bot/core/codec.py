"""Between Redis hashes (bytes) and the plain types of contract.records."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from contract.records import (
    Battle,
    BattleStatus,
    Comment,
    Demographics,
    Limits,
    Participant,
    ParticipantStatus,
    Reply,
    ReplyMode,
    Strategy,
    StudyConfig,
    StudyState,
    Turn,
    Winner,
)

LIMIT_FIELDS = {f.name: f.type for f in dataclasses.fields(Limits)}


def decode_hash(
    raw: Mapping[bytes, bytes] | Mapping[bytes | str, bytes | str] | Sequence[bytes | str],
) -> dict[str, str]:
    """HGETALL as a dict, or the flat [field, value, ...] array a Lua script returns."""
    items = raw.items() if isinstance(raw, Mapping) else zip(raw[0::2], raw[1::2], strict=True)
    return {as_text(k): as_text(v) for k, v in items}


def as_text(value: bytes | str) -> str:
    """A reply of our bytes client as text; redis-py types replies `bytes | str` since the
    client's decode_responses is not part of its type."""
    return value.decode() if isinstance(value, bytes) else value


def _float(value: str | None) -> float | None:
    return None if value is None or value == "" else float(value)


def turn_field(turn: int, name: str) -> str:
    """A battle field of one turn: `turn<n>.<name>` (reply_a, audio_ref, transcript, ...)."""
    return f"turn{turn}.{name}"


def _replies(h: Mapping[str, str], prefix: str = "") -> dict[str, Reply]:
    replies = {}
    for side in ("a", "b"):
        raw = h.get(f"{prefix}reply_{side}")
        if raw:
            replies[side] = Reply(**json.loads(raw))
    return replies


def _turns(h: Mapping[str, str], current: int, replies: dict[str, Reply]) -> tuple[Turn, ...]:
    """Every turn: the first from the battle's own fields, later ones from `turn<n>.*`; the
    current turn's replies are the battle's `reply_a` / `reply_b`."""
    turns = []
    for n in range(1, current + 1):
        f = functools.partial(turn_field, n)
        last = n == current
        turns.append(
            Turn(
                number=n,
                audio_ref=(h.get("audio_ref") if n == 1 else h.get(f("audio_ref"))) or None,
                audio_seconds=float(h["audio_seconds"] if n == 1 else h[f("audio_seconds")]),
                started_at=float(h["created_at"] if n == 1 else h[f("started_at")]),
                replies=replies if last else _replies(h, f"turn{n}."),
                answered_at=_float(h.get("answered_at") if last else h.get(f("answered_at"))),
                transcript=h.get(f("transcript")) or None,
            )
        )
    return tuple(turns)


def battle_from_hash(h: Mapping[str, str]) -> Battle:
    replies = _replies(h)
    turn = int(h.get("turn") or "1")
    n_comments = int(h.get("n_comments", "0"))
    comments = tuple(
        Comment(**json.loads(h[f"comment:{i}"]))
        for i in range(1, n_comments + 1)
        if f"comment:{i}" in h
    )
    ui = {k[3:]: json.loads(v) for k, v in h.items() if k.startswith("ui.")}
    flags = tuple(f for f in h.get("flags", "").split(",") if f)
    winner = h.get("winner")
    return Battle(
        battle_id=h["battle_id"],
        participant=h["participant"],
        model_a=h["model_a"],
        model_b=h["model_b"],
        status=BattleStatus(h["status"]),
        strategy=Strategy(h["strategy"]),
        created_at=float(h["created_at"]),
        audio_ref=h.get("audio_ref") or None,
        audio_seconds=float(h["audio_seconds"]),
        replies=replies,
        answered_at=_float(h.get("answered_at")),
        winner=Winner(winner) if winner else None,
        voted_at=_float(h.get("voted_at")),
        revealed_at=_float(h.get("revealed_at")),
        vote_delay_s=_float(h.get("vote_delay_s")),
        comments=comments,
        flags=flags,
        ui=ui,
        reply_mode=ReplyMode(h.get("reply_mode") or ReplyMode.TEXT),
        turn=turn,
        turns=_turns(h, turn, replies),
        loss_reason=h.get("loss_reason") or None,
    )


def reply_json(reply: Reply) -> str:
    data = dataclasses.asdict(reply)
    # A written reply is stored as before spoken replies existed.
    for name in ("audio_seconds", "audio_format"):
        if data[name] is None:
            del data[name]
    return json.dumps(data, ensure_ascii=False)


def participant_from_hash(h: Mapping[str, str]) -> Participant:
    demographics = json.loads(h["demographics"]) if h.get("demographics") else {}
    return Participant(
        pseudonym=h["pseudonym"],
        status=ParticipantStatus(h["status"]),
        consent_version=h.get("consent_version") or None,
        consented_at=_float(h.get("consented_at")),
        demographics=Demographics(**demographics),
        # A withdrawal record keeps no join time; the withdrawal time stands in.
        joined_at=float(h.get("joined_at") or h.get("withdrawn_at") or 0.0),
        withdrawn_at=_float(h.get("withdrawn_at")),
        blocked_reason=h.get("blocked_reason") or None,
    )


def config_from_hash(h: Mapping[str, str], roster: Sequence[str]) -> StudyConfig:
    limits: dict[str, Any] = {}
    for name, kind in LIMIT_FIELDS.items():
        key = f"limit.{name}"
        if key in h:
            limits[name] = int(h[key]) if kind in (int, "int") else float(h[key])
    return StudyConfig(
        state=StudyState(h["state"]),
        roster=tuple(sorted(roster)),
        strategy=Strategy(h["strategy"]),
        limits=Limits(**limits),
        replies=ReplyMode(h.get("replies") or ReplyMode.TEXT),
    )


def limit_hash_fields(limits: Mapping[str, int | float]) -> dict[str, str]:
    """Config hash fields `limit.<name>` for the given limits, each as its Limits type."""
    out: dict[str, str] = {}
    for name, value in limits.items():
        kind = LIMIT_FIELDS.get(name)
        if kind is None:
            raise ValueError(f"unknown limit {name!r}; limits: {', '.join(LIMIT_FIELDS)}")
        out[f"limit.{name}"] = repr(int(value) if kind in (int, "int") else float(value))
    return out


def battle_json(battle: Battle) -> dict[str, Any]:
    """A battle as JSON-able data (for my_data and the event stream)."""
    data = dataclasses.asdict(battle)
    data["comments"] = [dataclasses.asdict(c) for c in battle.comments]
    data["turns"] = [dataclasses.asdict(t) for t in battle.turns]
    data["flags"] = list(battle.flags)
    return data


def participant_json(participant: Participant) -> dict[str, Any]:
    return dataclasses.asdict(participant)
