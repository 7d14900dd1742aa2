"""Redis adapter: the hot inbox log and the per-inbox position sequencer (Lua scripts).

Keys carry the hash tag ``{u:<user_id>}`` so everything of one inbox sits in one Cluster slot:
- ``inbox:{u:ID}``: a stream whose entry ids are ``<position>-0`` (a stream id's first part
  is any 64-bit integer, so positions serve as ids; reads are ``XRANGE (<after>-0 +``);
  trimmed with ``MAXLEN ~``.
- ``inbox:meta:{u:ID}``: hash ``head`` (the sequencer: largest position handed out), ``last``
  (position of the latest reserved entry, for ``Appended.previous``), ``floor`` (the stream
  holds every entry above it unless some were removed, see ``READ``), ``recover`` (ms
  until which readers stay time-safe).
- ``inbox:pending:{u:ID}``: zset of reserved, uncommitted positions, members
  ``<20-digit position>:<deadline ms>`` with score 0, so lexicographic = numeric order.

``RESERVE`` fans one entry out to every recipient in **one round trip per message**. A Lua
script may only touch keys of one slot in Redis Cluster: with one Redis (the tested set-up)
a message is one call; under Cluster the caller must split recipients per slot, which makes
reserve and commit per-slot atomic only (see ``store_hybrid``). Lua numbers are doubles, so
positions (up to 2**63) are handled as zero-padded decimal strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis

from idgen.snowflake import EPOCH_MS
from inbox.models import EntryDraft, EntryKind

_LIB: Final = """
local function pad(s) return string.rep('0', 20 - #s) .. s end
local function unpad(s)
  local r = string.gsub(s, '^0+', '')
  if r == '' then return '0' end
  return r
end
local function incr(s)
  local b = {string.byte(s, 1, -1)}
  local i = #b
  while i > 0 do
    if b[i] == 57 then b[i] = 48; i = i - 1 else b[i] = b[i] + 1; break end
  end
  return string.char(unpack(b))
end
local function decr(s)
  local b = {string.byte(s, 1, -1)}
  local i = #b
  while i > 0 do
    if b[i] == 48 then b[i] = 57; i = i - 1 else b[i] = b[i] - 1; break end
  end
  return string.char(unpack(b))
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
RESERVE: Final = _LIB + """
-- KEYS: meta, stream, pending per recipient. ARGV: msg_id, ttl_ms, maxlen, skew_ms, epoch_ms,
-- then the stream entry's field/value pairs.
local now = now_ms()
local n = #KEYS / 3
local heads, lasts, eras, missing, wait = {}, {}, {}, {}, 0
for i = 1, n do
  local m = redis.call('HMGET', KEYS[3*i-2], 'head', 'last', 'recover', 'era')
  if not m[1] then missing[#missing+1] = tostring(i - 1)
  elseif m[3] and tonumber(m[3]) > now then wait = math.max(wait, tonumber(m[3]) - now) end
  heads[i], lasts[i], eras[i] = m[1], m[2], m[4]
end
if #missing > 0 then return {'seed', missing} end
if wait > 0 then return {'wait', tostring(wait)} end
local deadline = now + tonumber(ARGV[2])
local floor_ms = now - tonumber(ARGV[4]) - tonumber(ARGV[5])
local floor_pos = pad(string.format('%.0f', floor_ms * 4194304))
local msg = pad(ARGV[1])
local fields = {}
for j = 6, #ARGV do fields[#fields+1] = ARGV[j] end
local out = {}
for i = 1, n do
  local head = pad(heads[i])
  local pos = msg
  if head >= pos then pos = incr(head) end
  if floor_pos > pos then pos = floor_pos end
  local id = unpad(pos)
  redis.call('XADD', KEYS[3*i-1], 'MAXLEN', '~', ARGV[3], id .. '-0', unpack(fields))
  redis.call('HSET', KEYS[3*i-2], 'head', id, 'last', id)
  redis.call('ZADD', KEYS[3*i], 0, pos .. ':' .. deadline)
  out[#out+1] = lasts[i] or '0'
  out[#out+1] = id
  out[#out+1] = eras[i] or ''
end
return {'ok', tostring(now), tostring(deadline), out}
"""
COMMIT: Final = _LIB + """
-- KEYS: pending, meta per recipient [, idempotency key].
-- ARGV: deadline, n, member and era per recipient [, receipt, ttl_ms].
local now = now_ms()
local n = tonumber(ARGV[2])
local found, changed = 0, 0
for i = 1, n do
  if redis.call('ZSCORE', KEYS[2*i-1], ARGV[2*i+1]) then found = found + 1 end
  if redis.call('HGET', KEYS[2*i], 'era') ~= ARGV[2*i+2] then changed = changed + 1 end
end
if found == n and now <= tonumber(ARGV[1]) then
  for i = 1, n do redis.call('ZREM', KEYS[2*i-1], ARGV[2*i+1]) end
  if #KEYS > 2*n then redis.call('SET', KEYS[2*n+1], ARGV[2*n+3], 'PX', ARGV[2*n+4]) end
  return 'ok'
end
if changed == n then return 'lost' end
return 'expired'
"""
ABORT: Final = """
-- KEYS: pending, stream per entry. ARGV: member, stream id per entry.
for i = 1, #KEYS / 2 do
  redis.call('ZREM', KEYS[2*i-1], ARGV[2*i-1])
  redis.call('XDEL', KEYS[2*i], ARGV[2*i])
end
return 1
"""
SEED: Final = _LIB + """
-- KEYS: meta. ARGV: head, last, floor, recover_ms, started_ms, max_age_ms, era.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if now_ms() - tonumber(ARGV[5]) > tonumber(ARGV[6]) then return -1 end
redis.call('HSET', KEYS[1], 'head', ARGV[1], 'last', ARGV[2], 'floor', ARGV[3],
           'recover', ARGV[4], 'era', ARGV[7])
return 1
"""
READ: Final = _LIB + """
-- KEYS: meta, stream, pending. ARGV: after, count, pending_limit.
-- The stream holds every entry above the seeded floor, unless entries were removed (trimmed
-- or fenced): then only those from its first entry on (all of them if it is empty).
local m = redis.call('HMGET', KEYS[1], 'head', 'floor', 'recover')
local floor = m[2] or '0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  local f = {}
  for j = 1, #info, 2 do f[info[j]] = info[j+1] end
  if tonumber(f['length']) < tonumber(f['entries-added']) then
    local bound = pad(string.sub(f['last-generated-id'], 1, -3))
    if tonumber(f['length']) > 0 then
      bound = decr(pad(string.sub(f['recorded-first-entry-id'], 1, -3)))
    end
    if bound > pad(floor) then floor = unpad(bound) end
  end
end
local pending = redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[3]) - 1)
local entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])
return {tostring(now_ms()), m[1] or '', floor, m[3] or '0', pending, entries}
"""


def meta_key(user_id: int) -> str:
    """The inbox's sequencer hash."""
    return f"inbox:meta:{{u:{user_id}}}"


def stream_key(user_id: int) -> str:
    """The inbox's hot stream."""
    return f"inbox:{{u:{user_id}}}"


def pending_key(user_id: int) -> str:
    """The inbox's zset of reserved, uncommitted positions."""
    return f"inbox:pending:{{u:{user_id}}}"


def idem_key(sender_id: int, client_msg_id: str) -> str:
    """The idempotency claim/receipt of one send, in the sender's slot."""
    return f"idem:{{u:{sender_id}}}:{client_msg_id}"


def pending_member(pos: int, deadline_ms: int) -> str:
    """The pending-zset member of a reserved position."""
    return f"{pos:020d}:{deadline_ms}"


def text(value: Any) -> str:
    """A Redis reply as ``str`` (clients may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def draft_to_json(draft: EntryDraft) -> str:
    """The compact JSON form of a draft stored in stream entries."""
    doc: dict[str, Any] = {
        "k": draft.kind.value, "m": draft.msg_id, "c": draft.conversation_id,
        "s": draft.sender_id, "d": draft.sender_device_id, "t": draft.created_at_ms,
    }  # fmt: skip
    for key, value in (("b", draft.body), ("u", draft.up_to_msg_id), ("x", draft.scope),
                       ("g", draft.group)):  # fmt: skip
        if value is not None:
            doc[key] = value
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def draft_from_json(raw: str | bytes) -> EntryDraft:
    """Inverse of ``draft_to_json``."""
    doc = json.loads(raw)
    return EntryDraft(
        kind=EntryKind(doc["k"]), msg_id=doc["m"], conversation_id=doc["c"], sender_id=doc["s"],
        sender_device_id=doc["d"], created_at_ms=doc["t"], body=doc.get("b"),
        up_to_msg_id=doc.get("u"), scope=doc.get("x"), group=doc.get("g"),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reservation:
    """Positions reserved for one entry: ``previous``/``positions`` by user id."""

    now_ms: int
    deadline_ms: int
    previous: dict[int, int]
    positions: dict[int, int]
    eras: dict[int, str]


@dataclass(frozen=True, slots=True)
class NeedsSeed:
    """Some recipients' sequencers are missing (new inbox, or Redis lost its data)."""

    user_ids: list[int]


@dataclass(frozen=True, slots=True)
class Recovering:
    """An inbox is in its post-loss recovery window; retry after ``wait_ms``."""

    wait_ms: int


@dataclass(frozen=True, slots=True)
class InboxState:
    """One atomic look at an inbox: sequencer, pending positions, stream entries."""

    now_ms: int
    head: int | None
    floor: int
    recover_ms: int
    pending: list[tuple[int, int]]  # (position, deadline ms), ascending
    entries: list[tuple[int, dict[str, str]]]  # stream entries after the cursor


class RedisInboxLog:
    """The Redis half of the hybrid store: one Lua call per step (see the module docstring)."""

    def __init__(self, redis: Redis, *, maxlen: int = 10000, skew_ms: int = 1000) -> None:
        """Use ``redis``; streams keep about ``maxlen`` entries; positions are at least
        ``reserve time - skew_ms`` so time-based fencing can bound them."""
        self.redis = redis
        self.maxlen = maxlen
        self.skew_ms = skew_ms
        self._reserve = redis.register_script(RESERVE)
        self._commit = redis.register_script(COMMIT)
        self._abort = redis.register_script(ABORT)
        self._seed = redis.register_script(SEED)
        self._read = redis.register_script(READ)

    async def reserve(
        self, user_ids: Sequence[int], msg_id: int, ttl_ms: int, fields: Mapping[str, str]
    ) -> Reservation | NeedsSeed | Recovering:
        """Assign each inbox ``max(head + 1, msg_id, time floor)``, append the entry to its
        stream and mark it pending until ``now + ttl_ms``; all or nothing, one call."""
        keys = [k for uid in user_ids for k in (meta_key(uid), stream_key(uid), pending_key(uid))]
        argv: list[Any] = [msg_id, ttl_ms, self.maxlen, self.skew_ms, EPOCH_MS]
        for name, value in fields.items():
            argv += [name, value]
        reply = await self._reserve(keys=keys, args=argv)
        status = text(reply[0])
        if status == "seed":
            return NeedsSeed([user_ids[int(text(i))] for i in reply[1]])
        if status == "wait":
            return Recovering(int(text(reply[1])))
        flat = [text(v) for v in reply[3]]
        return Reservation(
            now_ms=int(text(reply[1])),
            deadline_ms=int(text(reply[2])),
            previous={uid: int(flat[3 * i]) for i, uid in enumerate(user_ids)},
            positions={uid: int(flat[3 * i + 1]) for i, uid in enumerate(user_ids)},
            eras={uid: flat[3 * i + 2] for i, uid in enumerate(user_ids)},
        )

    async def commit(
        self, reservation: Reservation, receipt: tuple[str, str, int] | None
    ) -> str:
        """Clear the pending marks if all are there and unexpired: ``ok``; ``lost`` if
        every inbox's sequencer changed era (Redis lost its data); ``expired`` otherwise
        (a mark expired or was fenced). ``receipt`` = (key, value, ttl ms) is stored on
        ``ok``, atomically."""
        deadline = reservation.deadline_ms
        keys: list[str] = []
        argv: list[Any] = [deadline, len(reservation.positions)]
        for uid, pos in reservation.positions.items():
            keys += [pending_key(uid), meta_key(uid)]
            argv += [pending_member(pos, deadline), reservation.eras[uid]]
        if receipt is not None:
            keys.append(receipt[0])
            argv += [receipt[1], receipt[2]]
        return text(await self._commit(keys=keys, args=argv))

    async def abort(self, positions: Mapping[int, int], deadline_ms: int) -> None:
        """Drop pending marks and stream entries (after a fence; nothing reads them again)."""
        keys: list[str] = []
        argv: list[str] = []
        for uid, pos in positions.items():
            keys += [pending_key(uid), stream_key(uid)]
            argv += [pending_member(pos, deadline_ms), f"{pos}-0"]
        if keys:
            await self._abort(keys=keys, args=argv)

    async def seed(
        self, user_id: int, head: int, last: int, floor: int, recover_ms: int, started_ms: int,
        max_age_ms: int,
        era: str,
    ) -> int:
        """Create the inbox's sequencer if it is missing: 1 done, 0 already there,
        -1 refused because the seed was computed more than ``max_age_ms`` ago."""
        args: list[Any] = [head, last, floor, recover_ms, started_ms, max_age_ms, era]
        return int(await self._seed(keys=[meta_key(user_id)], args=args))

    async def state(self, user_id: int, after: int, count: int, pending_limit: int = 64
                    ) -> InboxState:  # fmt: skip
        """Sequencer, pending positions and up to ``count`` stream entries after ``after``."""
        keys = [meta_key(user_id), stream_key(user_id), pending_key(user_id)]
        reply = await self._read(keys=keys, args=[after, count, pending_limit])
        pending = []
        for member in reply[4]:
            pos, _, deadline = text(member).partition(":")
            pending.append((int(pos), int(deadline)))
        entries = []
        for entry_id, flat in reply[5]:
            values = [text(v) for v in flat]
            fields = dict(zip(values[::2], values[1::2], strict=True))
            entries.append((int(text(entry_id)[:-2]), fields))
        head = text(reply[1])
        return InboxState(
            now_ms=int(text(reply[0])), head=int(head) if head else None,
            floor=int(text(reply[2])), recover_ms=int(text(reply[3])), pending=pending,
            entries=entries,
        )  # fmt: skip

    async def entry(self, user_id: int, pos: int) -> dict[str, str] | None:
        """The stream entry at ``pos``, if the stream still holds it."""
        found = await self.redis.xrange(stream_key(user_id), f"{pos}-0", f"{pos}-0")
        if not found:
            return None
        fields = found[0][1] or {}
        return {text(k): text(v) for k, v in fields.items()}

    async def time_ms(self) -> int:
        """Redis's clock (the sequencer's time base)."""
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
