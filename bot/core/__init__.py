"""The study core: plain Python over Redis that never imports discord (docs/ARCHITECTURE.md)."""

from bot.core.connection import connect
from bot.core.reading import iter_battle_records, iter_battles, iter_participants
from bot.core.study import Study
from contract.records import (
    Battle,
    BattleStatus,
    Comment,
    Demographics,
    Limits,
    Participant,
    ParticipantStatus,
    Refused,
    Reply,
    StorageNotDurable,
    Strategy,
    StudyConfig,
    StudyState,
    Winner,
)

__all__ = [
    "Battle",
    "BattleStatus",
    "Comment",
    "Demographics",
    "Limits",
    "Participant",
    "ParticipantStatus",
    "Refused",
    "Reply",
    "StorageNotDurable",
    "Strategy",
    "Study",
    "StudyConfig",
    "StudyState",
    "Winner",
    "connect",
    "iter_battle_records",
    "iter_battles",
    "iter_participants",
]
