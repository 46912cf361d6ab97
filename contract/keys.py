"""Every Redis key and queue name Parley uses, in one place (the bottom layer: stdlib only).

Both sides read this module: the bot's study core, the Discord layer and the sweeper, and the
workers. Lua scripts derive a few names from stored fields (bot/core/scripts.py) and must agree
with the functions here. The store assumes one Redis server, not Redis Cluster. RQ keeps its own
`rq:` keys (contract/queueing.py is the only module that touches them).
"""

from __future__ import annotations

NAMESPACE = "parley"

# -- between the bot and the workers ----------------------------------------------------------
# A worker publishes each finished job on this stream; the bot reads it with the consumer group
# RESULTS_GROUP (at-least-once: the bot side is idempotent).
RESULTS_STREAM = f"{NAMESPACE}:results"
RESULTS_GROUP = "bot"
# Partial text while a reply is generated (fields battle_id, side, text so far); best effort.
PARTIALS_STREAM = f"{NAMESPACE}:partials"
PARTIALS_MAXLEN = 10_000
# The participant's audio bytes, so a worker on another host needs no shared disk.
AUDIO_TTL_S = 24 * 3600
# Live workers announce themselves here (hash: worker name -> contract.heartbeat.WorkerEntry JSON).
WORKERS_KEY = f"{NAMESPACE}:workers"


def queue_name(model_id: str) -> str:
    """The RQ queue of one model."""
    return f"model:{model_id}"


def audio_key(battle_id: str) -> str:
    return f"{NAMESPACE}:audio:{battle_id}"


REPLY_AUDIO_SUFFIXES = (":reply_a", ":reply_b")


def reply_audio_key(battle_id: str, side: str) -> str:
    """One side's spoken reply (reply modes speech/both): worker writes, bot reads; TTL
    AUDIO_TTL_S, deleted with the battle on withdrawal (same prefix as the battle's audio)."""
    suffix = f":reply_{side}"
    if suffix not in REPLY_AUDIO_SUFFIXES:
        raise ValueError(f"side must be 'a' or 'b', got {side!r}")
    return audio_key(battle_id) + suffix


def turn_audio_key(battle_id: str, turn: int) -> str:
    """The clip of one turn of a battle: turn 1 is the battle's own `audio_key`."""
    if turn < 1:
        raise ValueError(f"turns count from 1, got {turn}")
    return audio_key(battle_id) if turn == 1 else f"{audio_key(battle_id)}:t{turn}"


def reason_audio_key(battle_id: str) -> str:
    """A voice reason for a battle's vote, until the study's ASR has transcribed it."""
    return f"{audio_key(battle_id)}:reason"


# The study ASR's transcripts (contract.protocol.TranscriptMessage), read like RESULTS_STREAM.
TRANSCRIPTS_STREAM = f"{NAMESPACE}:transcripts"


# -- the study core ---------------------------------------------------------------------------
CONFIG = f"{NAMESPACE}:config"  # hash: state, strategy, limit.<name>, initialised
ROSTER = f"{NAMESPACE}:roster"  # set of model ids
PARTICIPANTS = f"{NAMESPACE}:participants"  # set of pseudonyms
BATTLES = f"{NAMESPACE}:battles"  # zset: battle id -> created_at
OPEN_BATTLES = f"{NAMESPACE}:battles:open"  # set: queued or answered
STATUS_COUNTS = f"{NAMESPACE}:battles:by_status"  # hash: status -> battles
PAIR_BATTLES = f"{NAMESPACE}:pairs:battles"  # hash: "a|b" -> battles not failed
PAIR_VOTES = f"{NAMESPACE}:pairs:votes"  # hash: "a|b" -> voted battles
# hash: "a|b:low" / "a|b:high" / "a|b:tie" -> votes won by the pair's first (sorted) model, by its
# second, and ties of either kind: the running tally the `active` strategy and `/study status` read.
PAIR_OUTCOMES = f"{NAMESPACE}:pairs:outcomes"
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


def reason_pending(pseudonym: str) -> str:
    """ "battle_id|place": the participant's next voice message there is that vote's reason."""
    return f"{PARTICIPANT_PREFIX}{pseudonym}:reason_pending"


def daily_prefix(pseudonym: str) -> str:
    return f"{PARTICIPANT_PREFIX}{pseudonym}:day:"


def daily(pseudonym: str, day: str) -> str:
    """Battles a participant started on one UTC day (YYYY-MM-DD), failed ones not counted."""
    return daily_prefix(pseudonym) + day


def pair_field(model_1: str, model_2: str) -> str:
    """Unordered pair as a hash field; model ids cannot contain '|' (contract.modelsfile)."""
    low, high = sorted((model_1, model_2))
    return f"{low}|{high}"


OUTCOME_SIDES = ("low", "high", "tie")


def outcome_field(pair: str, side: str) -> str:
    """The `PAIR_OUTCOMES` field of one pair's tally: side is "low", "high" or "tie"."""
    if side not in OUTCOME_SIDES:
        raise ValueError(f"outcome side must be one of {OUTCOME_SIDES}, got {side!r}")
    return f"{pair}:{side}"


def split_pair(field: str) -> tuple[str, str]:
    low, _, high = field.partition("|")
    return low, high


# -- the sweeper (bot/sweeper.py) --------------------------------------------------------------
# Per battle: side -> JSON {"attempt", "job_id", "at"}; only job ids and times, never content.
SWEEPER_PREFIX = f"{NAMESPACE}:sweeper:"
SWEPT_BATTLES = f"{SWEEPER_PREFIX}battles"  # set of the battles that have such a record


def sweeper_battle(battle_id: str) -> str:
    return SWEEPER_PREFIX + battle_id


# -- the Discord layer (never read by the core) -------------------------------------------------
DISCORD_PREFIX = f"{NAMESPACE}:discord:"


def commands_synced(guild_id: int) -> str:
    """Hash of the slash-command set last synced to a guild, so a restart does not re-sync."""
    return f"{DISCORD_PREFIX}commands_synced:{guild_id}"


def participant_thread(pseudonym: str) -> str:
    """The participant's private thread id; deleted on withdrawal."""
    return f"{DISCORD_PREFIX}thread:{pseudonym}"
