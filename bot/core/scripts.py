"""The Lua scripts behind every multi-key write of the core: one round trip, atomic.

Each script checks its rules and writes the record, the derived state (pair counts, daily
counts, open set, counts by status) and the event in one step, so a crash or a concurrent caller
never sees half a write. Scripts return a flat array: [code, detail, *HGETALL of the record].
They are registered once per client (`redis.register_script`, EVALSHA with EVAL fallback).

A few key names are derived inside scripts from stored fields (a battle's day key, the keys of
a withdrawing participant's battles), with prefixes passed in ARGV: the store expects one
Redis server, not Redis Cluster.
"""

from __future__ import annotations

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

# KEYS: config, roster, participant, daily.  ARGV: now, day_end.
CHECK_ELIGIBILITY = (
    _ELIGIBILITY
    + """
local code, detail = eligibility(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
return {code, detail}
"""
)

# KEYS: config, roster, participant, daily, battle, battles, open, participant battles,
#       pair battles, status counts, events, participant events, audio.
# ARGV: now, day_end, model_a, model_b, pair, battle_id, audio bytes, audio ttl, event data,
#       daily ttl, *battle field/value pairs.
START_BATTLE = (
    _ELIGIBILITY
    + """
local code, detail = eligibility(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
if code ~= 'ok' then return {code, detail} end
-- The pair was drawn from a roster read a moment ago; a moderator may have changed it since.
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 0 or
   redis.call('SISMEMBER', KEYS[2], ARGV[4]) == 0 then
  return {'roster_changed', ''}
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return redis.error_reply('battle id collision: ' .. ARGV[6])
end
local fields = {}
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[5], unpack(fields))
redis.call('ZADD', KEYS[6], ARGV[1], ARGV[6])
redis.call('SADD', KEYS[7], ARGV[6])
redis.call('SADD', KEYS[8], ARGV[6])
redis.call('HINCRBY', KEYS[9], ARGV[5], 1)
redis.call('HINCRBY', KEYS[10], 'queued', 1)
redis.call('INCR', KEYS[4])
redis.call('EXPIRE', KEYS[4], ARGV[10])
redis.call('HSET', KEYS[3], 'last_battle_at', ARGV[1])
redis.call('SET', KEYS[13], ARGV[7], 'EX', ARGV[8])
local id = redis.call('XADD', KEYS[11], '*', 'type', 'battle_started', 'data', ARGV[9])
redis.call('RPUSH', KEYS[12], id)
return {'ok', tostring(tonumber(detail) - 1)}
"""
)

# KEYS: battle, open, pair battles, status counts, events, participant events, daily.
# ARGV: side, model_id, reply json, now, ok ("1"/"0"), event data, flag, battle_id.
RECORD_REPLY = (
    _WITH_RECORD
    + """
local b = redis.call('HMGET', KEYS[1], 'status', 'model_a', 'model_b', 'pair', 'flags')
if not b[1] then return {'missing', ''} end
local side, other, expected = 'a', 'b', b[2]
if ARGV[1] == 'b' then side, other, expected = 'b', 'a', b[3] end
if expected ~= ARGV[2] then return {'mismatch', expected} end
-- At-least-once delivery: the first reply for a side wins; a repeat changes nothing.
if redis.call('HSETNX', KEYS[1], 'reply_' .. side, ARGV[3]) == 0 then
  return with_record('same', '', KEYS[1])
end
if ARGV[5] == '0' then
  local flags = b[5]
  if not flags or flags == '' then flags = ARGV[7] else flags = flags .. ',' .. ARGV[7] end
  redis.call('HSET', KEYS[1], 'flags', flags)
  if b[1] == 'queued' then
    redis.call('HSET', KEYS[1], 'status', 'failed', 'failed_at', ARGV[4])
    redis.call('SREM', KEYS[2], ARGV[8])
    redis.call('HINCRBY', KEYS[3], b[4], -1)
    redis.call('HINCRBY', KEYS[4], 'queued', -1)
    redis.call('HINCRBY', KEYS[4], 'failed', 1)
    -- A failed battle gives the participant their battle back for the day.
    if tonumber(redis.call('GET', KEYS[7]) or '0') > 0 then redis.call('DECR', KEYS[7]) end
  end
elseif b[1] == 'queued' and redis.call('HEXISTS', KEYS[1], 'reply_' .. other) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'answered', 'answered_at', ARGV[4])
  redis.call('HINCRBY', KEYS[4], 'queued', -1)
  redis.call('HINCRBY', KEYS[4], 'answered', 1)
end
local id = redis.call('XADD', KEYS[5], '*', 'type', 'reply', 'data', ARGV[6])
redis.call('RPUSH', KEYS[6], id)
return with_record('changed', '', KEYS[1])
"""
)

# KEYS: battle, open, pair votes, status counts, events, participant events, daily, config.
# ARGV: pseudonym, winner, now, event data, battle_id.
VOTE = (
    _WITH_RECORD
    + """
local b = redis.call('HMGET', KEYS[1], 'participant', 'status', 'answered_at', 'pair')
if not b[1] then return {'no_such_battle', ''} end
if b[1] ~= ARGV[1] then return {'not_your_battle', ''} end
if b[2] == 'voted' then return {'already_voted', ''} end
if b[2] == 'failed' then return {'failed', ''} end
if b[2] ~= 'answered' then return {'not_ready', ''} end
local delay = tonumber(ARGV[3]) - tonumber(b[3])
-- The vote and the reveal are one write: no vote can exist after a reveal.
redis.call('HSET', KEYS[1], 'status', 'voted', 'winner', ARGV[2], 'voted_at', ARGV[3],
           'revealed_at', ARGV[3], 'vote_delay_s', string.format('%.6f', delay))
redis.call('SREM', KEYS[2], ARGV[5])
redis.call('HINCRBY', KEYS[3], b[4], 1)
redis.call('HINCRBY', KEYS[4], 'answered', -1)
redis.call('HINCRBY', KEYS[4], 'voted', 1)
local id = redis.call('XADD', KEYS[5], '*', 'type', 'vote', 'data', ARGV[4])
redis.call('RPUSH', KEYS[6], id)
local quota = tonumber(redis.call('HGET', KEYS[8], 'limit.daily_quota') or '0')
local used = tonumber(redis.call('GET', KEYS[7]) or '0')
return with_record('ok', tostring(math.max(quota - used, 0)), KEYS[1])
"""
)

# KEYS: battle, events, participant events.  ARGV: pseudonym, comment json, max comments, event.
COMMENT = (
    _WITH_RECORD
    + """
local b = redis.call('HMGET', KEYS[1], 'participant', 'n_comments')
if not b[1] then return {'no_such_battle', ''} end
if b[1] ~= ARGV[1] then return {'not_your_battle', ''} end
if tonumber(b[2] or '0') >= tonumber(ARGV[3]) then return {'too_many_comments', ''} end
local n = redis.call('HINCRBY', KEYS[1], 'n_comments', 1)
redis.call('HSET', KEYS[1], 'comment:' .. n, ARGV[2])
local id = redis.call('XADD', KEYS[2], '*', 'type', 'comment', 'data', ARGV[4])
redis.call('RPUSH', KEYS[3], id)
return with_record('ok', '', KEYS[1])
"""
)

# KEYS: participant, participants, events, participant events.
# ARGV: pseudonym, now, event type, event data, guard field, guard value, *field/value pairs.
# Creates the record if missing; a withdrawn record is never touched again. When the guard
# field already holds the guard value nothing is written (idempotent consent).
UPDATE_PARTICIPANT = (
    _WITH_RECORD
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'withdrawn' then return {'withdrawn', ''} end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], ARGV[5]) == ARGV[6] then
  return with_record('same', '', KEYS[1])
end
if not status then
  redis.call('HSET', KEYS[1], 'pseudonym', ARGV[1], 'status', 'active', 'joined_at', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[1])
end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
local id = redis.call('XADD', KEYS[3], '*', 'type', ARGV[3], 'data', ARGV[4])
redis.call('RPUSH', KEYS[4], id)
return with_record('changed', '', KEYS[1])
"""
)

# KEYS: participant, participant battles, participant events, battles, open, pair battles,
#       pair votes, status counts, events, participants.
# ARGV: pseudonym, now, event data, battle prefix, audio prefix, daily prefix.
# Deletes every battle (record, audio bytes, daily counts) and every event about the participant
# and leaves one record: pseudonym, status withdrawn, withdrawn_at. Returns the battle ids so the
# caller can delete the audio files and scrub the worker streams.
WITHDRAW = """
if redis.call('HGET', KEYS[1], 'status') == 'withdrawn' then return {'already'} end
local ids = redis.call('SMEMBERS', KEYS[2])
for _, id in ipairs(ids) do
  local bk = ARGV[4] .. id
  local b = redis.call('HMGET', bk, 'status', 'pair', 'day')
  if b[1] then
    if b[1] ~= 'failed' then redis.call('HINCRBY', KEYS[6], b[2], -1) end
    if b[1] == 'voted' then redis.call('HINCRBY', KEYS[7], b[2], -1) end
    redis.call('HINCRBY', KEYS[8], b[1], -1)
    redis.call('DEL', bk, ARGV[6] .. b[3])
  end
  redis.call('ZREM', KEYS[4], id)
  redis.call('SREM', KEYS[5], id)
  redis.call('DEL', ARGV[5] .. id)
end
for _, id in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do redis.call('XDEL', KEYS[9], id) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'pseudonym', ARGV[1], 'status', 'withdrawn', 'withdrawn_at', ARGV[2])
redis.call('SADD', KEYS[10], ARGV[1])
redis.call('XADD', KEYS[9], '*', 'type', 'withdrawn', 'data', ARGV[3])
local out = {'ok'}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
"""

# KEYS: config, roster, events.
# ARGV: now, event data, number of limit fields n, n field/value pairs, *model ids.
# The first start of a study: open, uniform, default limits, every model of the models file.
INIT_CONFIG = """
if redis.call('HSETNX', KEYS[1], 'initialised_at', ARGV[1]) == 0 then return 0 end
local n = tonumber(ARGV[3])
local fields = {'state', 'open', 'strategy', 'uniform'}
for i = 4, 3 + 2 * n do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
for i = 4 + 2 * n, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('XADD', KEYS[3], '*', 'type', 'config', 'data', ARGV[2])
return 1
"""

# KEYS: battle.  ARGV: *field/value pairs.  Never creates a battle that is gone (withdrawn).
SET_UI = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: battles.  ARGV: min score (inclusive), offset, count, battle prefix.
# A page of battles by created_at as one JSON string [[id, score, [field, value, ...]], ...]:
# the export reads 100,000s of battles, and one bulk reply parses far faster than 40 small ones
# per battle. Paging by score, not rank, so a withdrawal during the export shifts nothing.
READ_BATTLES = """
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES',
                        'LIMIT', ARGV[2], ARGV[3])
if #rows == 0 then return '[]' end
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = {rows[i], rows[i + 1], redis.call('HGETALL', ARGV[4] .. rows[i])}
end
return cjson.encode(out)
"""
