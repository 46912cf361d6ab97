"""The Lua scripts behind every multi-key write of the core: one round trip, atomic.

Each script checks its rules and writes the record, the derived state (pair counts, daily
counts, open set, counts by status) and the event in one step, so a crash or a concurrent caller
never sees half a write. Most return a flat array: [code, detail, *HGETALL of the record].

A script's KEYS and ARGV are declared once, by name (`LuaScript.keys` / `.argv`): the source
starts with `local <name>_key = KEYS[i]` and `local <name> = ARGV[j]` for each, and the Python
wrappers (scripts.py) fill the same names, so no call site counts positions. Values past the
named ARGV are the script's `rest` (field/value pairs, model ids).

A few key names are derived inside scripts from stored fields (a battle's day key, the keys of
a withdrawing participant's battles), with prefixes passed in ARGV: the store expects one
Redis server, not Redis Cluster. Events are written as `XADD events * type <event_type> data
<event_data>`, both from contract.events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.typing import EncodableT

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class LuaScript:
    name: str
    keys: tuple[str, ...]  # local `<name>_key` in Lua
    argv: tuple[str, ...]  # local `<name>` in Lua
    body: str
    rest: str = ""  # what ARGV holds past the named values ("" for nothing)

    def __post_init__(self) -> None:
        names = [f"{k}_key" for k in self.keys] + list(self.argv) + (["rest"] if self.rest else [])
        bad = [n for n in names if not _NAME.match(n)]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"script {self.name}: bad or repeated argument names {names}")

    @property
    def source(self) -> str:
        lines = [f"local {k}_key = KEYS[{i}]" for i, k in enumerate(self.keys, 1)]
        lines += [f"local {a} = ARGV[{i}]" for i, a in enumerate(self.argv, 1)]
        if self.rest:
            lines.append(f"local rest = {{}}  -- {self.rest}")
            lines.append(f"for i = {len(self.argv) + 1}, #ARGV do rest[#rest + 1] = ARGV[i] end")
        return "\n".join(lines) + "\n" + self.body

    def layout(
        self,
        keys: Mapping[str, str],
        argv: Mapping[str, EncodableT],
        rest: Sequence[EncodableT] = (),
    ) -> tuple[list[str], list[EncodableT]]:
        """KEYS and ARGV in the script's order, from values given by name."""
        _same_names(self.name, "keys", self.keys, keys)
        _same_names(self.name, "argv", self.argv, argv)
        if rest and not self.rest:
            raise ValueError(f"script {self.name} takes no values past its named ARGV")
        return [keys[k] for k in self.keys], [argv[a] for a in self.argv] + list(rest)


def _same_names(script: str, what: str, want: Sequence[str], got: Mapping[str, object]) -> None:
    if set(got) != set(want):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        raise ValueError(f"script {script} {what}: missing {missing}, unexpected {extra}")


# Shared by the eligibility check and start_battle, so both apply exactly the same rules.
# Returns code, detail: ("ok", remaining-before-this-battle) or (refusal code, retry_at or "").
_ELIGIBILITY = """
local function eligibility(config_key, roster_key, participant_key, daily_key, now, day_end)
  local p = redis.call('HMGET', participant_key, 'status', 'consent_version', 'last_battle_at')
  if not p[1] then return 'no_consent', '' end
  if p[1] == 'withdrawn' or p[1] == 'blocked' then return p[1], '' end
  if not p[2] then return 'no_consent', '' end
  local c = redis.call('HMGET', config_key, 'state', 'limit.daily_quota',
                       'limit.min_seconds_between')
  if not c[1] then error('study config is not initialised') end
  if c[1] == 'closed' and redis.call('HEXISTS', config_key, 'opened_at') == 0 then
    return 'not_open_yet', ''
  end
  if c[1] ~= 'open' then return c[1], '' end
  if redis.call('SCARD', roster_key) < 2 then return 'roster_too_small', '' end
  local quota = tonumber(c[2])
  local used = tonumber(redis.call('GET', daily_key) or '0')
  if used >= quota then return 'daily_quota', day_end end
  if p[3] then
    local next_at = tonumber(p[3]) + tonumber(c[3])
    if tonumber(now) < next_at then return 'rate_limited', string.format('%.6f', next_at) end
  end
  return 'ok', tostring(quota - used)
end
"""

_WITH_RECORD = """
local function with_record(code, detail, key)
  local out = {code, detail}
  for _, v in ipairs(redis.call('HGETALL', key)) do out[#out + 1] = v end
  return out
end
"""

# Appends the event and lists its id under the participant, so withdrawal can delete it.
_LOG_EVENT = """
local function log_event(events_key, participant_events_key, event_type, event_data)
  local id = redis.call('XADD', events_key, '*', 'type', event_type, 'data', event_data)
  if participant_events_key then redis.call('RPUSH', participant_events_key, id) end
  return id
end
"""

# Which tally of PAIR_OUTCOMES a vote counts in: the pair field is "low|high" (sorted ids).
_OUTCOME_SIDE = """
local function outcome_side(pair, model_a, winner)
  local low = string.sub(pair, 1, string.find(pair, '|', 1, true) - 1)
  if winner == 'model_a' then if model_a == low then return 'low' else return 'high' end end
  if winner == 'model_b' then if model_a == low then return 'high' else return 'low' end end
  return 'tie'
end
"""

CHECK_ELIGIBILITY = LuaScript(
    name="check_eligibility",
    keys=("config", "roster", "participant", "daily"),
    argv=("now", "day_end"),
    body=_ELIGIBILITY
    + """
local code, detail = eligibility(config_key, roster_key, participant_key, daily_key, now, day_end)
return {code, detail}
""",
)

START_BATTLE = LuaScript(
    name="start_battle",
    keys=(
        "config",
        "roster",
        "participant",
        "daily",
        "battle",
        "battles",
        "open",
        "participant_battles",
        "pair_battles",
        "status_counts",
        "events",
        "participant_events",
        "audio",
    ),
    argv=(
        "now",
        "day_end",
        "model_a",
        "model_b",
        "pair",
        "battle_id",
        "audio",
        "audio_ttl",
        "daily_ttl",
        "event_type",
        "event_data",
    ),
    rest="the battle record's field/value pairs",
    body=_ELIGIBILITY
    + _LOG_EVENT
    + """
local code, detail = eligibility(config_key, roster_key, participant_key, daily_key, now, day_end)
if code ~= 'ok' then return {code, detail} end
-- The pair was drawn from a roster read a moment ago; a moderator may have changed it since.
if redis.call('SISMEMBER', roster_key, model_a) == 0 or
   redis.call('SISMEMBER', roster_key, model_b) == 0 then
  return {'roster_changed', ''}
end
if redis.call('EXISTS', battle_key) == 1 then
  return redis.error_reply('battle id collision: ' .. battle_id)
end
redis.call('HSET', battle_key, unpack(rest))
redis.call('ZADD', battles_key, now, battle_id)
redis.call('SADD', open_key, battle_id)
redis.call('SADD', participant_battles_key, battle_id)
redis.call('HINCRBY', pair_battles_key, pair, 1)
redis.call('HINCRBY', status_counts_key, 'queued', 1)
redis.call('INCR', daily_key)
redis.call('EXPIRE', daily_key, daily_ttl)
redis.call('HSET', participant_key, 'last_battle_at', now)
redis.call('SET', audio_key, audio, 'EX', audio_ttl)
log_event(events_key, participant_events_key, event_type, event_data)
return {'ok', tostring(tonumber(detail) - 1)}
""",
)

RECORD_REPLY = LuaScript(
    name="record_reply",
    keys=(
        "battle",
        "open",
        "pair_battles",
        "status_counts",
        "events",
        "participant_events",
        "daily",
    ),
    argv=(
        "side",
        "model_id",
        "reply_json",
        "now",
        "ok",
        "flag",
        "leak_flag",
        "battle_id",
        "turn",
        "event_type",
        "event_data",
    ),
    body=_WITH_RECORD
    + _LOG_EVENT
    + """
local b = redis.call('HMGET', battle_key, 'status', 'model_a', 'model_b', 'pair', 'flags', 'turn')
local function add_flag(flags, f)
  if not flags or flags == '' then return f end
  for x in string.gmatch(flags, '[^,]+') do if x == f then return flags end end
  return flags .. ',' .. f
end
if not b[1] then return {'missing', ''} end
local this, other, expected = 'a', 'b', b[2]
if side == 'b' then this, other, expected = 'b', 'a', b[3] end
if expected ~= model_id then return {'mismatch', expected} end
-- A result of an earlier turn delivered again after the next turn began: already recorded.
if tonumber(turn) ~= tonumber(b[6] or '1') then return with_record('same', '', battle_key) end
-- At-least-once delivery: the first reply for a side wins; a repeat changes nothing.
if redis.call('HSETNX', battle_key, 'reply_' .. this, reply_json) == 0 then
  return with_record('same', '', battle_key)
end
-- A reply that named a model is stored masked; its battle is flagged once.
if leak_flag ~= '' then
  b[5] = add_flag(b[5], leak_flag)
  redis.call('HSET', battle_key, 'flags', b[5])
end
if ok == '0' then
  local flags = b[5]
  if not flags or flags == '' then flags = flag else flags = flags .. ',' .. flag end
  redis.call('HSET', battle_key, 'flags', flags)
  if b[1] == 'queued' then
    redis.call('HSET', battle_key, 'status', 'failed', 'failed_at', now)
    redis.call('SREM', open_key, battle_id)
    redis.call('HINCRBY', pair_battles_key, b[4], -1)
    redis.call('HINCRBY', status_counts_key, 'queued', -1)
    redis.call('HINCRBY', status_counts_key, 'failed', 1)
    -- A failed battle gives the participant their battle back for the day.
    if tonumber(redis.call('GET', daily_key) or '0') > 0 then redis.call('DECR', daily_key) end
  end
elseif b[1] == 'queued' and redis.call('HEXISTS', battle_key, 'reply_' .. other) == 1 then
  redis.call('HSET', battle_key, 'status', 'answered', 'answered_at', now)
  redis.call('HINCRBY', status_counts_key, 'queued', -1)
  redis.call('HINCRBY', status_counts_key, 'answered', 1)
end
log_event(events_key, participant_events_key, event_type, event_data)
return with_record('changed', '', battle_key)
""",
)

VOTE = LuaScript(
    name="vote",
    keys=(
        "battle",
        "open",
        "pair_votes",
        "pair_outcomes",
        "status_counts",
        "events",
        "participant_events",
        "daily",
        "config",
    ),
    argv=("participant", "winner", "now", "flags", "battle_id", "event_type", "event_data"),
    body=_WITH_RECORD
    + _LOG_EVENT
    + _OUTCOME_SIDE
    + """
local b = redis.call('HMGET', battle_key, 'participant', 'status', 'answered_at', 'pair',
                    'model_a', 'flags')
if not b[1] then return {'no_such_battle', ''} end
if b[1] ~= participant then return {'not_your_battle', ''} end
if b[2] == 'voted' then return {'already_voted', ''} end
if b[2] == 'failed' then return {'failed', ''} end
if b[2] ~= 'answered' then return {'not_ready', ''} end
local delay = tonumber(now) - tonumber(b[3])
-- The vote and the reveal are one write: no vote can exist after a reveal.
redis.call('HSET', battle_key, 'status', 'voted', 'winner', winner, 'voted_at', now,
           'revealed_at', now, 'vote_delay_s', string.format('%.6f', delay))
-- Vote-quality flags (fast_vote) join the battle's flags; stored, never acted on.
if flags ~= '' then
  local all = b[6]
  if not all or all == '' then all = flags else all = all .. ',' .. flags end
  redis.call('HSET', battle_key, 'flags', all)
end
redis.call('SREM', open_key, battle_id)
redis.call('HINCRBY', pair_votes_key, b[4], 1)
redis.call('HINCRBY', pair_outcomes_key, b[4] .. ':' .. outcome_side(b[4], b[5], winner), 1)
redis.call('HINCRBY', status_counts_key, 'answered', -1)
redis.call('HINCRBY', status_counts_key, 'voted', 1)
log_event(events_key, participant_events_key, event_type, event_data)
local quota = tonumber(redis.call('HGET', config_key, 'limit.daily_quota') or '0')
local used = tonumber(redis.call('GET', daily_key) or '0')
return with_record('ok', tostring(math.max(quota - used, 0)), battle_key)
""",
)

COMMENT = LuaScript(
    name="comment",
    keys=("battle", "events", "participant_events"),
    argv=("participant", "comment_json", "max_comments", "event_type", "event_data"),
    body=_WITH_RECORD
    + _LOG_EVENT
    + """
local b = redis.call('HMGET', battle_key, 'participant', 'n_comments')
if not b[1] then return {'no_such_battle', ''} end
if b[1] ~= participant then return {'not_your_battle', ''} end
if tonumber(b[2] or '0') >= tonumber(max_comments) then return {'too_many_comments', ''} end
local n = redis.call('HINCRBY', battle_key, 'n_comments', 1)
redis.call('HSET', battle_key, 'comment:' .. n, comment_json)
log_event(events_key, participant_events_key, event_type, event_data)
return with_record('ok', '', battle_key)
""",
)

# Creates the record if missing; a withdrawn record is never touched again. When the guard
# field already holds the guard value nothing is written (idempotent consent).
UPDATE_PARTICIPANT = LuaScript(
    name="update_participant",
    keys=("participant", "participants", "events", "participant_events"),
    argv=("pseudonym", "now", "guard_field", "guard_value", "event_type", "event_data"),
    rest="the participant record's field/value pairs to set",
    body=_WITH_RECORD
    + _LOG_EVENT
    + """
local status = redis.call('HGET', participant_key, 'status')
if status == 'withdrawn' then return {'withdrawn', ''} end
if guard_field ~= '' and redis.call('HGET', participant_key, guard_field) == guard_value then
  return with_record('same', '', participant_key)
end
if not status then
  redis.call('HSET', participant_key, 'pseudonym', pseudonym, 'status', 'active',
             'joined_at', now)
  redis.call('SADD', participants_key, pseudonym)
end
if #rest > 0 then redis.call('HSET', participant_key, unpack(rest)) end
log_event(events_key, participant_events_key, event_type, event_data)
return with_record('changed', '', participant_key)
""",
)

# Deletes every battle (record, audio bytes, daily counts) and every event about the participant
# and leaves one record: pseudonym, status withdrawn, withdrawn_at. Returns the battle ids so the
# caller can delete the audio files and scrub the worker streams.
WITHDRAW = LuaScript(
    name="withdraw",
    keys=(
        "participant",
        "participant_battles",
        "participant_events",
        "battles",
        "open",
        "pair_battles",
        "pair_votes",
        "pair_outcomes",
        "status_counts",
        "events",
        "participants",
        "reason_pending",
    ),
    argv=(
        "pseudonym",
        "now",
        "battle_prefix",
        "audio_prefix",
        "daily_prefix",
        "event_type",
        "event_data",
    ),
    body=_OUTCOME_SIDE
    + """
if redis.call('HGET', participant_key, 'status') == 'withdrawn' then return {'already'} end
local ids = redis.call('SMEMBERS', participant_battles_key)
for _, id in ipairs(ids) do
  local bk = battle_prefix .. id
  local b = redis.call('HMGET', bk, 'status', 'pair', 'day', 'model_a', 'winner', 'turn')
  -- Every turn's clip, and a voice reason not transcribed yet.
  for n = 2, tonumber(b[6] or '1') do redis.call('DEL', audio_prefix .. id .. ':t' .. n) end
  redis.call('DEL', audio_prefix .. id .. ':reason')
  if b[1] then
    if b[1] ~= 'failed' then redis.call('HINCRBY', pair_battles_key, b[2], -1) end
    if b[1] == 'voted' then
      redis.call('HINCRBY', pair_votes_key, b[2], -1)
      redis.call('HINCRBY', pair_outcomes_key, b[2] .. ':' .. outcome_side(b[2], b[4], b[5]), -1)
    end
    redis.call('HINCRBY', status_counts_key, b[1], -1)
    redis.call('DEL', bk, daily_prefix .. b[3])
  end
  redis.call('ZREM', battles_key, id)
  redis.call('SREM', open_key, id)
  -- The participant's clip and both spoken replies (keys.reply_audio_key).
  redis.call('DEL', audio_prefix .. id, audio_prefix .. id .. ':reply_a',
             audio_prefix .. id .. ':reply_b')
end
for _, id in ipairs(redis.call('LRANGE', participant_events_key, 0, -1)) do
  redis.call('XDEL', events_key, id)
end
redis.call('DEL', participant_key, participant_battles_key, participant_events_key,
           reason_pending_key)
redis.call('HSET', participant_key, 'pseudonym', pseudonym, 'status', 'withdrawn',
           'withdrawn_at', now)
redis.call('SADD', participants_key, pseudonym)
redis.call('XADD', events_key, '*', 'type', event_type, 'data', event_data)
local out = {'ok'}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
""",
)

# The first start of a study: its whole config, roster and event, once (returns 0 after that).
INIT_CONFIG = LuaScript(
    name="init_config",
    keys=("config", "roster", "events"),
    argv=("now", "n_fields", "event_type", "event_data"),
    rest="n_fields config field/value pairs, then the roster's model ids",
    body="""
if redis.call('HSETNX', config_key, 'initialised_at', now) == 0 then return 0 end
local n = tonumber(n_fields)
local fields = {}
for i = 1, 2 * n do fields[#fields + 1] = rest[i] end
redis.call('HSET', config_key, unpack(fields))
if redis.call('HGET', config_key, 'state') == 'open' then
  redis.call('HSETNX', config_key, 'opened_at', '1')
end
for i = 2 * n + 1, #rest do redis.call('SADD', roster_key, rest[i]) end
redis.call('XADD', events_key, '*', 'type', event_type, 'data', event_data)
return 1
""",
)

# A moderator's change: config fields, and the roster when `replace_roster` is '1'.
CHANGE_CONFIG = LuaScript(
    name="change_config",
    keys=("config", "roster", "events"),
    argv=("n_fields", "replace_roster", "event_type", "event_data"),
    rest="n_fields config field/value pairs, then the new roster's model ids",
    body="""
local n = tonumber(n_fields)
if n > 0 then
  local fields = {}
  for i = 1, 2 * n do fields[#fields + 1] = rest[i] end
  redis.call('HSET', config_key, unpack(fields))
end
-- Once opened, a closed study is "closed", no longer "not open yet".
if redis.call('HGET', config_key, 'state') == 'open' then
  redis.call('HSETNX', config_key, 'opened_at', '1')
end
if replace_roster == '1' then
  redis.call('DEL', roster_key)
  for i = 2 * n + 1, #rest do redis.call('SADD', roster_key, rest[i]) end
end
redis.call('XADD', events_key, '*', 'type', event_type, 'data', event_data)
return 1
""",
)

# Never creates a battle that is gone (withdrawn).
SET_UI = LuaScript(
    name="set_ui",
    keys=("battle",),
    argv=(),
    rest="ui.<name> field/value pairs",
    body="""
if redis.call('EXISTS', battle_key) == 0 then return 0 end
redis.call('HSET', battle_key, unpack(rest))
return 1
""",
)

# A page of battles by created_at as one JSON string [[id, score, [field, value, ...]], ...]:
# the export reads 100,000s of battles, and one bulk reply parses far faster than 40 small ones
# per battle. Paging by score, not rank, so a withdrawal during the export shifts nothing.
READ_BATTLES = LuaScript(
    name="read_battles",
    keys=("battles",),
    argv=("min_score", "offset", "count", "battle_prefix"),
    body="""
local rows = redis.call('ZRANGEBYSCORE', battles_key, min_score, '+inf', 'WITHSCORES',
                        'LIMIT', offset, count)
if #rows == 0 then return '[]' end
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = {rows[i], rows[i + 1], redis.call('HGETALL', battle_prefix .. rows[i])}
end
return cjson.encode(out)
""",
)

# The participant's next voice message in the battle's place, while it is answered and not
# voted: the earlier turn's replies move to `turn<n>.*`, the battle is queued again for turn n+1.
# Returns ("ok", new turn) with the record, or a refusal code (detail: the turn limit).
CONTINUE_BATTLE = LuaScript(
    name="continue_battle",
    keys=(
        "battle",
        "participant",
        "config",
        "status_counts",
        "events",
        "participant_events",
        "audio",
    ),
    argv=(
        "participant",
        "turn",
        "now",
        "audio_ref",
        "audio_format",
        "audio_seconds",
        "audio_bytes",
        "audio",
        "audio_ttl",
        "default_max_turns",
        "event_type",
        "event_data",
    ),
    rest="ui.<name> field/value pairs for the new turn's message",
    body=_WITH_RECORD
    + _LOG_EVENT
    + """
local b = redis.call('HMGET', battle_key, 'participant', 'status', 'turn', 'answered_at',
                    'reply_a', 'reply_b')
if not b[1] then return {'no_such_battle', ''} end
if b[1] ~= participant then return {'not_your_battle', ''} end
local p = redis.call('HMGET', participant_key, 'status', 'consent_version')
if p[1] == 'withdrawn' or p[1] == 'blocked' then return {p[1], ''} end
if not p[1] or not p[2] then return {'no_consent', ''} end
local c = redis.call('HMGET', config_key, 'state', 'limit.max_turns')
if c[1] ~= 'open' then return {c[1] or 'closed', ''} end
if b[2] == 'voted' then return {'already_voted', ''} end
if b[2] == 'failed' then return {'failed', ''} end
if b[2] ~= 'answered' then return {'not_ready', ''} end
local n = tonumber(b[3] or '1')
local max_turns = tonumber(c[2] or default_max_turns)
if n >= max_turns then return {'turn_limit', tostring(max_turns)} end
-- The caller named the turn (its clip's key and event) from a read a moment ago.
if n + 1 ~= tonumber(turn) then return {'not_ready', ''} end
local done, nxt = 'turn' .. n .. '.', 'turn' .. (n + 1) .. '.'
redis.call('HSET', battle_key, done .. 'reply_a', b[5], done .. 'reply_b', b[6],
           done .. 'answered_at', b[4])
redis.call('HDEL', battle_key, 'reply_a', 'reply_b', 'answered_at', 'ui.rendered')
redis.call('HSET', battle_key, 'turn', n + 1, 'status', 'queued',
           nxt .. 'audio_ref', audio_ref, nxt .. 'audio_format', audio_format,
           nxt .. 'audio_seconds', audio_seconds, nxt .. 'audio_bytes', audio_bytes,
           nxt .. 'started_at', now)
if #rest > 0 then redis.call('HSET', battle_key, unpack(rest)) end
redis.call('HINCRBY', status_counts_key, 'answered', -1)
redis.call('HINCRBY', status_counts_key, 'queued', 1)
redis.call('SET', audio_key, audio, 'EX', audio_ttl)
log_event(events_key, participant_events_key, event_type, event_data)
return with_record('ok', tostring(n + 1), battle_key)
""",
)

# The study ASR's transcript of one turn's clip ("missing" when the battle is gone).
SET_TRANSCRIPT = LuaScript(
    name="set_transcript",
    keys=("battle", "events", "participant_events"),
    argv=("field", "text", "event_type", "event_data"),
    body=_LOG_EVENT
    + """
if redis.call('EXISTS', battle_key) == 0 then return 'missing' end
redis.call('HSET', battle_key, field, text)
log_event(events_key, participant_events_key, event_type, event_data)
return 'ok'
""",
)

# After the vote: why the loser lost (a later pick replaces an earlier one).
LOSS_REASON = LuaScript(
    name="loss_reason",
    keys=("battle", "events", "participant_events"),
    argv=("participant", "reason", "event_type", "event_data"),
    body=_WITH_RECORD
    + _LOG_EVENT
    + """
local b = redis.call('HMGET', battle_key, 'participant', 'status', 'winner')
if not b[1] then return {'no_such_battle', ''} end
if b[1] ~= participant then return {'not_your_battle', ''} end
if b[2] ~= 'voted' then return {'not_voted', ''} end
if b[3] == 'tie' then return {'no_loser', ''} end
redis.call('HSET', battle_key, 'loss_reason', reason)
log_event(events_key, participant_events_key, event_type, event_data)
return with_record('ok', '', battle_key)
""",
)

# "Say why (voice)": the participant's next voice message in `place` is this vote's reason.
AWAIT_REASON = LuaScript(
    name="await_reason",
    keys=("battle", "pending"),
    argv=("participant", "value", "ttl"),
    body="""
local b = redis.call('HMGET', battle_key, 'participant', 'status')
if not b[1] then return 'no_such_battle' end
if b[1] ~= participant then return 'not_your_battle' end
if b[2] ~= 'voted' then return 'not_voted' end
redis.call('SET', pending_key, value, 'EX', ttl)
return 'ok'
""",
)

# The awaited voice reason arrived: its bytes wait for the ASR under the reason key.
TAKE_REASON = LuaScript(
    name="take_reason",
    keys=("battle", "pending", "audio"),
    argv=("value", "audio", "audio_ttl"),
    body="""
if redis.call('GET', pending_key) ~= value then return 'expired' end
redis.call('DEL', pending_key)
if redis.call('EXISTS', battle_key) == 0 then return 'no_such_battle' end
redis.call('SET', audio_key, audio, 'EX', audio_ttl)
return 'ok'
""",
)

ALL = (
    CHECK_ELIGIBILITY,
    START_BATTLE,
    RECORD_REPLY,
    VOTE,
    COMMENT,
    UPDATE_PARTICIPANT,
    WITHDRAW,
    INIT_CONFIG,
    CHANGE_CONFIG,
    SET_UI,
    READ_BATTLES,
    CONTINUE_BATTLE,
    SET_TRANSCRIPT,
    LOSS_REASON,
    AWAIT_REASON,
    TAKE_REASON,
)
