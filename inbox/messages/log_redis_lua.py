"""The Lua scripts of ``log_redis.RedisInboxLog``: the sequencer and hot log of each inbox.

Each script runs atomically in Redis. See ``log_redis`` for the key layout (the meta hash
``inbox:meta:{u:ID}`` and the stream ``inbox:{u:ID}``) and why fan-out takes one call per
message. Lua numbers are doubles, exact only below 2**53, so positions (up to 2**63) travel as
canonical decimal strings and are compared by length, then bytes; replies and per-recipient
arguments are comma-joined strings.
"""

from typing import Final

_LIB: Final = """
-- Positions are canonical decimal strings (no leading zeros): Lua numbers are doubles, exact
-- only below 2**53, so comparisons go by length, then bytes.
local function lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function incr(s)
  local i = #s
  while i > 0 and string.byte(s, i) == 57 do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #s) end
  return string.sub(s, 1, i - 1) .. string.char(string.byte(s, i) + 1) .. string.rep('0', #s - i)
end
local function decr(s)
  local i = #s
  while string.byte(s, i) == 48 do i = i - 1 end
  local r = string.sub(s, 1, i - 1) .. string.char(string.byte(s, i) - 1) .. string.rep('9', #s - i)
  if #r > 1 and string.byte(r, 1) == 48 then r = string.sub(r, 2) end
  return r
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function stream_of(meta)  -- 'inbox:meta:{u:ID}' -> 'inbox:{u:ID}' (same slot)
  return 'inbox:' .. string.sub(meta, 12)
end
local function split(s)  -- 'a,,b' -> {'a', '', 'b'}
  local out = {}
  for part in string.gmatch(s .. ',', '([^,]*),') do out[#out+1] = part end
  return out
end
"""
"""Helpers every script starts with: positions as canonical decimal strings (``lt``,
``incr``, ``decr``), ``now_ms`` (Redis ``TIME``), ``stream_of`` (meta key -> stream key, same
slot) and ``split`` (a comma-joined argument -> a table)."""

RESERVE: Final = _LIB + """
-- ARGV: ttl_ms, maxlen, skew_ms, epoch_ms, claim_ttl_ms, count, then per message:
--   n (its inboxes), msg_id, claim token ('' for none), nf, nf field/value strings.
-- KEYS: per message, the meta key of each of its n inboxes, then its idempotency key when it
-- has a token. Per inbox: one HMGET for the whole call, then XADD and HSET per message.
local now = now_ms()
local count = tonumber(ARGV[6])
local msgs, a, k = {}, 7, 1
for j = 1, count do
  local n, nf = tonumber(ARGV[a]), tonumber(ARGV[a + 3])
  local m = {first = k, n = n, msg_id = ARGV[a + 1], token = ARGV[a + 2], fields = {}}
  for f = 1, nf do m.fields[f] = ARGV[a + 3 + f] end
  a, k = a + 4 + nf, k + n
  if m.token ~= '' then m.idem = KEYS[k]; k = k + 1 end
  msgs[j] = m
end
-- Claims first: a message whose key holds a receipt (a replay) or another attempt's claim
-- (also an earlier message of this call) reserves nothing; 'busy' says in how many ms that
-- claim expires (a claim lives claim_ttl_ms: its attempt's deadline plus a margin).
local claimed = {}
for j = 1, count do
  local m = msgs[j]
  if m.idem then
    local held = redis.call('GET', m.idem)
    if held and string.sub(held, 1, 2) == 'r:' then m.skip = {'replay', held}
    elseif claimed[m.idem] then m.skip = {'busy', ARGV[5]}
    elseif held then m.skip = {'busy', tostring(math.max(redis.call('PTTL', m.idem), 1))}
    else claimed[m.idem] = true end
  end
end
-- Every inbox written must have a sequencer, none recovering; else nothing is reserved.
local state, missing, wait = {}, {}, 0
for j = 1, count do
  local m = msgs[j]
  if not m.skip then
    for i = m.first, m.first + m.n - 1 do
      local key = KEYS[i]
      if state[key] == nil then
        local h = redis.call('HMGET', key, 'head', 'last', 'recover', 'era')
        if not h[1] then missing[#missing + 1] = tostring(i - 1); state[key] = false
        else
          if h[3] and tonumber(h[3]) > now then wait = math.max(wait, tonumber(h[3]) - now) end
          -- 'last' exists only from a seed to the next reserve; after that it equals 'head'.
          state[key] = {head = h[1], last = h[2] or h[1], seeded = h[2], era = h[4] or ''}
        end
      end
    end
  end
end
if #missing > 0 then return {'seed', missing} end
if wait > 0 then return {'wait', tostring(wait)} end
local deadline = tostring(now + tonumber(ARGV[1]))
local maxlen = ARGV[2]
local floor_ms = math.max(0, now - tonumber(ARGV[3]) - tonumber(ARGV[4]))
local time_floor = string.format('%.0f', floor_ms * 4194304)
local out = {'ok', tostring(now), deadline}
for j = 1, count do
  local m = msgs[j]
  if m.skip then
    out[#out + 1] = m.skip[1]; out[#out + 1] = m.skip[2]; out[#out + 1] = ''
    out[#out + 1] = ''
  else
    if m.idem then redis.call('SET', m.idem, m.token, 'PX', ARGV[5]) end
    local base = time_floor
    if lt(base, m.msg_id) then base = m.msg_id end
    local base_id, base_mark = base .. '-0', 'p:' .. base  -- the common case builds nothing
    local lasts, positions, eras = {}, {}, {}
    for i = m.first, m.first + m.n - 1 do
      local key = KEYS[i]
      local s = state[key]
      local pos, id, mark = base, base_id, base_mark
      if not lt(s.head, base) then pos = incr(s.head); id = pos .. '-0'; mark = 'p:' .. pos end
      redis.call('XADD', stream_of(key), 'MAXLEN', '~', maxlen, id, unpack(m.fields))
      redis.call('HSET', key, 'head', pos, mark, deadline)
      if s.seeded then redis.call('HDEL', key, 'last'); s.seeded = nil end
      lasts[#lasts + 1], positions[#positions + 1], eras[#eras + 1] = s.last, pos, s.era
      s.head, s.last = pos, pos
    end
    out[#out + 1] = 'ok'; out[#out + 1] = table.concat(lasts, ',')
    out[#out + 1] = table.concat(positions, ','); out[#out + 1] = table.concat(eras, ',')
  end
end
return out
"""
"""Reserve positions for several messages at once, in list order, each in every one of its
inboxes; all or nothing for the call.

Per message: if its idempotency key holds a receipt (``r:...``) it is a replay, if it holds a
claim (or an earlier message of this call claims it) it is busy; either way it reserves
nothing. Otherwise its key is claimed (``SET token PX claim_ttl``) and each inbox gets
``max(head + 1, msg_id, min_id(now - skew))``: the entry goes into its stream at
``<pos>-0`` (``MAXLEN ~ maxlen``) and the meta hash gets the new ``head`` and the pending mark
``p:<pos>`` = ``now + ttl_ms``. Replies ``{'seed', key indexes}`` when some sequencers are
missing, ``{'wait', ms}`` while one is recovering (nothing reserved or claimed), else
``{'ok', now, deadline}`` followed by four strings per message: ``ok`` and its previous
positions, positions and eras (comma-joined, in its KEYS order), or ``replay`` and the
receipt, or ``busy`` and the ms until the claim holding its key expires.
"""

COMMIT: Final = _LIB + """
-- KEYS: meta per recipient [, idempotency key].
-- ARGV: deadline, positions, eras (comma-joined, in KEYS order) [, receipt, ttl_ms, token].
-- Happy path: one HDEL per recipient; if a mark is missing, the removed ones are put back.
local now = now_ms()
local positions = split(ARGV[2])
local n = #positions
local ours = true  -- another attempt took the key over once our claim expired: not ours
if #KEYS > n and ARGV[6] then
  local held = redis.call('GET', KEYS[n+1])
  ours = not held or held == ARGV[6]
end
if ours and now <= tonumber(ARGV[1]) then
  local removed, count = {}, 0
  for i = 1, n do
    removed[i] = redis.call('HDEL', KEYS[i], 'p:' .. positions[i])
    count = count + removed[i]
  end
  if count == n then
    if #KEYS > n then redis.call('SET', KEYS[n+1], ARGV[4], 'PX', ARGV[5]) end
    return 'ok'
  end
  for i = 1, n do  -- all or nothing: leave the marks as they were for the fence
    if removed[i] == 1 then redis.call('HSET', KEYS[i], 'p:' .. positions[i], ARGV[1]) end
  end
end
local eras, changed = split(ARGV[3]), 0
for i = 1, n do
  if redis.call('HGET', KEYS[i], 'era') ~= eras[i] then changed = changed + 1 end
end
if changed == n then return 'lost' end
return 'expired'
"""
"""Clear the pending marks of one reservation, all or none.

KEYS: the meta key of each recipient [, the idempotency key]. ARGV: deadline, positions, eras
(comma-joined, in KEYS order) [, receipt, ttl_ms [, claim token]]. Replies ``ok`` when every
mark was there, the deadline has not passed and the key (when a token is given) holds that
claim or nothing (and then stores the receipt for ttl_ms); otherwise puts back the marks it
removed and replies ``lost`` when every inbox changed era (Redis lost them), else
``expired``. The token check makes a take-over safe even if Redis' clock stepped back."""

ABORT: Final = _LIB + """
-- KEYS: meta per entry. ARGV: deadline, positions (comma-joined, in KEYS order).
local positions = split(ARGV[2])
for i = 1, #KEYS do
  local field = 'p:' .. positions[i]
  if redis.call('HGET', KEYS[i], field) == ARGV[1] then redis.call('HDEL', KEYS[i], field) end
  redis.call('XDEL', stream_of(KEYS[i]), positions[i] .. '-0')
end
return 1
"""
"""Drop a fenced reservation: each pending mark that still holds this deadline, and the
stream entry at its position.

KEYS: the meta key of each inbox. ARGV: deadline, positions (comma-joined, in KEYS order).
Replies 1."""

SEED: Final = _LIB + """
-- KEYS: meta. ARGV: head, last, floor, recover_ms, started_ms, max_age_ms, era.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if now_ms() - tonumber(ARGV[5]) > tonumber(ARGV[6]) then return -1 end
redis.call('HSET', KEYS[1], 'head', ARGV[1], 'last', ARGV[2], 'floor', ARGV[3],
           'recover', ARGV[4], 'era', ARGV[7])
return 1
"""
"""Create one inbox's sequencer if it is missing.

KEYS: the meta key. ARGV: head, last, floor, recover_ms, started_ms, max_age_ms, era. Replies 1
when created, 0 when it already exists, -1 when the seed was computed more than max_age_ms ago
(by Redis ``TIME``)."""

READ: Final = _LIB + """
-- KEYS: meta, stream. ARGV: after, count, pending_limit.
-- The stream holds every entry above the seeded floor, unless entries were removed (trimmed
-- or fenced): then only those from its first entry on (all of them if it is empty).
local h = redis.call('HGETALL', KEYS[1])
local head, floor, recover, marks = '', '0', '0', {}
for j = 1, #h, 2 do
  local k = h[j]
  if string.sub(k, 1, 2) == 'p:' then marks[#marks+1] = {string.sub(k, 3), h[j+1]}
  elseif k == 'head' then head = h[j+1]
  elseif k == 'floor' then floor = h[j+1]
  elseif k == 'recover' then recover = h[j+1] end
end
table.sort(marks, function(a, b) return lt(a[1], b[1]) end)
local pending = {}
for j = 1, math.min(#marks, tonumber(ARGV[3])) do pending[j] = marks[j][1] .. ':' .. marks[j][2] end
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  local f = {}
  for j = 1, #info, 2 do f[info[j]] = info[j+1] end
  if tonumber(f['length']) < tonumber(f['entries-added']) then
    local bound = string.sub(f['last-generated-id'], 1, -3)
    if tonumber(f['length']) > 0 then
      bound = decr(string.sub(f['recorded-first-entry-id'], 1, -3))
    end
    if lt(floor, bound) then floor = bound end
  end
end
local entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
return {tostring(now_ms()), head, floor, recover, pending, entries}
"""
"""One atomic look at an inbox: sequencer, pending marks and stream entries after a cursor.

KEYS: the meta key, the stream key. ARGV: after, count, pending_limit. Replies
``{now_ms, head, floor, recover, pending, entries}``: ``floor`` raised to where the stream's
entries start when some were removed (trimmed or fenced), the lowest pending_limit marks as
``<pos>:<deadline ms>``, and up to count stream entries above ``after``."""

RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
"""Drop an idempotency claim if it still holds this attempt's token (compare-and-delete).

KEYS: the idempotency key. ARGV: the claim's token. Replies 1."""
