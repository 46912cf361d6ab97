"""Redis key names of the study core, all under the `parley:` namespace.

One place for every name, so the Lua scripts (which derive a few names from stored fields, see
scripts.py) and the Python side agree. The store assumes one Redis server, not Redis Cluster.
"""

from __future__ import annotations

from workers.protocol import NAMESPACE, audio_key

CONFIG = f"{NAMESPACE}:config"  # hash: state, strategy, limit.<name>, initialised
ROSTER = f"{NAMESPACE}:roster"  # set of model ids
PARTICIPANTS = f"{NAMESPACE}:participants"  # set of pseudonyms
BATTLES = f"{NAMESPACE}:battles"  # zset: battle id -> created_at
OPEN_BATTLES = f"{NAMESPACE}:battles:open"  # set: queued or answered
STATUS_COUNTS = f"{NAMESPACE}:battles:by_status"  # hash: status -> battles
PAIR_BATTLES = f"{NAMESPACE}:pairs:battles"  # hash: "a|b" -> battles not failed
PAIR_VOTES = f"{NAMESPACE}:pairs:votes"  # hash: "a|b" -> voted battles
EVENTS = f"{NAMESPACE}:events"  # stream: append-only audit of everything that happened

BATTLE_PREFIX = f"{NAMESPACE}:battle:"
PARTICIPANT_PREFIX = f"{NAMESPACE}:participant:"
AUDIO_PREFIX = audio_key("")


def battle(battle_id: str) -> str:
    return BATTLE_PREFIX + battle_id


def participant(pseudonym: str) -> str:
    return PARTICIPANT_PREFIX + pseudonym


def participant_battles(pseudonym: str) -> str:
    return f"{PARTICIPANT_PREFIX}{pseudonym}:battles"


def participant_events(pseudonym: str) -> str:
    """List of the ids of the events about one participant, so withdrawal can delete them."""
    return f"{PARTICIPANT_PREFIX}{pseudonym}:events"


def daily_prefix(pseudonym: str) -> str:
    return f"{PARTICIPANT_PREFIX}{pseudonym}:day:"


def daily(pseudonym: str, day: str) -> str:
    """Battles a participant started on one UTC day (YYYY-MM-DD), failed ones not counted."""
    return daily_prefix(pseudonym) + day


def pair_field(model_1: str, model_2: str) -> str:
    """Unordered pair as a hash field; model ids cannot contain '|' (workers.modelsfile)."""
    low, high = sorted((model_1, model_2))
    return f"{low}|{high}"


def split_pair(field: str) -> tuple[str, str]:
    low, _, high = field.partition("|")
    return low, high
