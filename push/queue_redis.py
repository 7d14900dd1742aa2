"""The push queue in Redis: a stream with a consumer group, a due-time sorted set for
retries, a dead-letter stream, and one short-lived key per job id for deduplication.

- ``enqueue``: a Lua script sets ``<stream>:id:<job_id>`` (NX, expiring after the dedup
  window) and XADDs the job only when the key was new, with the time it became due (``due``,
  by the injected clock; promoted retries carry their due time too).
- ``claim``: a Lua script first moves retries that are due (by the injected clock) from the
  sorted set into the stream; then XAUTOCLAIM takes over entries another consumer has held
  longer than the visibility timeout (idle time by Redis' own clock); then XREADGROUP reads
  new entries, blocking up to ``block_ms`` when nothing else was found.
- ``retry`` / ``dead_letter``: Lua scripts that check the claim is still this consumer's
  (XPENDING for that entry and consumer), then ZADD the next attempt to the sorted set / XADD
  it to the dead-letter stream, and XACK + XDEL the entry, all in one step. ``ack`` is XACK +
  XDEL in a MULTI.

All keys derive from ``stream``, so the default ``push:{jobs}`` puts them in one Redis Cluster
slot (Lua scripts need that). Blocking reads hold a pooled connection for ``block_ms``: the
client's ``socket_timeout``, if any, must be longer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from idgen.clock import SYSTEM_CLOCK, Clock
from push.job import JobDecodeError, PushJob, decode_job, encode_job
from push.queue import (
    DEFAULT_DEDUP_WINDOW_MS,
    DEFAULT_VISIBILITY_TIMEOUT_MS,
    Claimed,
    DeadLetter,
    QueueStats,
)

_ENQUEUE_LUA = """
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'job', ARGV[i + 1], 'due', ARGV[2])
    added = added + 1
  end
end
return added
"""

_PROMOTE_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES',
                      'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do
  redis.call('XADD', KEYS[2], '*', 'job', due[i], 'due', due[i + 1])
  redis.call('ZREM', KEYS[1], due[i])
end
return #due / 2
"""

_RETRY_LUA = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

_DEAD_LUA = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
           'job', ARGV[4], 'reason', ARGV[5], 'at', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

_PROMOTE_BATCH = 1000


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _field(fields: Any, name: str) -> str | None:
    if not isinstance(fields, dict):
        return None
    value = fields.get(name.encode(), fields.get(name))
    return None if value is None else _text(value)


def _read_entries(read: Any) -> list[tuple[Any, Any]]:
    """The entries of an XREADGROUP reply on one stream: RESP2 ``[[name, entries]]``,
    RESP3 ``{name: [entries]}``."""
    if not read:
        return []
    if isinstance(read, dict):
        return [entry for value in read.values() for batch in value for entry in batch]
    return [entry for _, batch in read for entry in batch]


class RedisQueue:
    """:class:`push.queue.PushQueue` in Redis (see the module docstring).

    ``redis`` belongs to the caller (``close`` does not close it); either response decoding
    works. ``dead`` and ``delayed`` default to ``<stream>:dead`` and ``<stream>:delayed``;
    the dead-letter stream is capped near ``dead_max`` entries.
    """

    def __init__(
        self,
        redis: Redis,
        clock: Clock = SYSTEM_CLOCK,
        *,
        stream: str = "push:{jobs}",
        group: str = "push-workers",
        dead: str | None = None,
        delayed: str | None = None,
        visibility_timeout_ms: int = DEFAULT_VISIBILITY_TIMEOUT_MS,
        dedup_window_ms: int = DEFAULT_DEDUP_WINDOW_MS,
        dead_max: int = 10_000,
    ) -> None:
        if visibility_timeout_ms <= 0 or dedup_window_ms <= 0 or dead_max <= 0:
            raise ValueError("visibility_timeout_ms, dedup_window_ms and dead_max must be > 0")
        self._redis = redis
        self._clock = clock
        self.stream = stream
        self.group = group
        self.dead = dead or f"{stream}:dead"
        self.delayed = delayed or f"{stream}:delayed"
        self._visibility_ms = visibility_timeout_ms
        self._dedup_ms = dedup_window_ms
        self._dead_max = dead_max
        self._enqueue_script = redis.register_script(_ENQUEUE_LUA)
        self._promote_script = redis.register_script(_PROMOTE_LUA)
        self._retry_script = redis.register_script(_RETRY_LUA)
        self._dead_script = redis.register_script(_DEAD_LUA)
        self._group_ready = False
        self._autoclaim_cursor = "0-0"
        self._closed = False

    def dedup_key(self, job_id: str) -> str:
        """The key that remembers ``job_id`` for the dedup window."""
        return f"{self.stream}:id:{job_id}"

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("push queue is closed")

    async def enqueue(self, jobs: Sequence[PushJob]) -> int:
        """Add the jobs whose ids were not seen within the dedup window; return how many."""
        self._check_open()
        if not jobs:
            return 0
        keys = [self.stream, *(self.dedup_key(job.job_id) for job in jobs)]
        args: list[str | int] = [self._dedup_ms, self._clock.now_ms(),
                                 *(encode_job(job) for job in jobs)]
        return int(await self._enqueue_script(keys=keys, args=args))

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        """Take up to ``count`` due jobs: promoted retries and new entries, and entries whose
        claim expired; block up to ``block_ms`` for new entries when there are none."""
        self._check_open()
        await self._ensure_group()
        try:
            return await self._claim(consumer, count, block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream vanished (a Redis restarted without persistence): start it afresh.
            self._group_ready = False
            await self._ensure_group()
            return await self._claim(consumer, count, block_ms)

    async def _claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        await self._promote_script(
            keys=[self.delayed, self.stream], args=[self._clock.now_ms(), _PROMOTE_BATCH]
        )
        reply = await self._redis.xautoclaim(
            self.stream,
            self.group,
            consumer,
            min_idle_time=self._visibility_ms,
            start_id=self._autoclaim_cursor,
            count=count,
        )
        self._autoclaim_cursor = _text(reply[0]) if reply else "0-0"
        entries: list[tuple[Any, Any]] = list(reply[1]) if len(reply) > 1 else []
        wanted = count - len(entries)
        if wanted > 0:
            block = block_ms if block_ms > 0 and not entries else None
            read = await self._redis.xreadgroup(
                self.group, consumer, {self.stream: ">"}, count=wanted, block=block
            )
            entries.extend(_read_entries(read))
        return await self._decode(consumer, entries)

    async def _decode(self, consumer: str, entries: list[tuple[Any, Any]]) -> list[Claimed]:
        claimed: list[Claimed] = []
        for entry_id, fields in entries:
            receipt = _text(entry_id)
            if fields is None:  # deleted meanwhile (Redis 6.2 reports these as nil)
                continue
            raw = _field(fields, "job") or ""
            try:
                job = decode_job(raw)
            except JobDecodeError as exc:
                await self._bury(receipt, consumer, raw, f"undecodable job: {exc}")
                continue
            claimed.append(Claimed(job=job, receipt=receipt, consumer=consumer))
        return claimed

    async def ack(self, claimed: Claimed) -> bool:
        """XACK and XDEL the entry (whoever holds it now)."""
        self._check_open()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, claimed.receipt)
            pipe.xdel(self.stream, claimed.receipt)
            acked, _ = await pipe.execute()
        return bool(acked)

    async def retry(self, claimed: Claimed, delay_s: float) -> bool:
        """Replace the entry by its next attempt in the due-time set, if still ours."""
        self._check_open()
        due = self._clock.now_ms() + max(round(delay_s * 1000), 0)
        args: list[str | int] = [self.group, claimed.receipt, claimed.consumer, due]
        args.append(encode_job(claimed.job.next_attempt()))
        return bool(await self._retry_script(keys=[self.stream, self.delayed], args=args))

    async def dead_letter(self, claimed: Claimed, reason: str) -> bool:
        """Move the entry to the dead-letter stream with ``reason``, if still ours."""
        self._check_open()
        return await self._bury(claimed.receipt, claimed.consumer, encode_job(claimed.job), reason)

    async def _bury(self, receipt: str, consumer: str, raw: str, reason: str) -> bool:
        args: list[str | int] = [self.group, receipt, consumer, raw, reason]
        args += [self._clock.now_ms(), self._dead_max]
        return bool(await self._dead_script(keys=[self.stream, self.dead], args=args))

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` entries of the dead-letter stream, newest first."""
        self._check_open()
        letters: list[DeadLetter] = []
        for _, fields in await self._redis.xrevrange(self.dead, count=limit) or []:
            raw = _field(fields, "job") or ""
            try:
                job: PushJob | None = decode_job(raw)
            except JobDecodeError:
                job = None
            at = _field(fields, "at") or "0"
            letters.append(
                DeadLetter(
                    job=job,
                    raw=raw,
                    reason=_field(fields, "reason") or "",
                    dead_at_ms=int(at) if at.isdigit() else 0,
                )
            )
        return letters

    async def stats(self) -> QueueStats:
        """Depth (stream + retries); the age of the stream's head (waiting or being sent)
        or of a retry due but not yet moved into the stream, whichever became due first;
        and the dead-letter stream's length."""
        self._check_open()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.zcard(self.delayed)
            pipe.xlen(self.dead)
            pipe.xrange(self.stream, count=1)
            pipe.zrange(self.delayed, 0, 0, withscores=True)
            waiting, scheduled, dead, head, next_retry = await pipe.execute()
        due_times = [int(score) for _, score in next_retry]
        if head:
            entry_id, fields = head[0]
            due_times.append(int(float(_field(fields, "due") or _text(entry_id).split("-")[0])))
        now = self._clock.now_ms()
        oldest = max((now - due for due in due_times if due <= now), default=0)
        return QueueStats(int(waiting) + int(scheduled), oldest, int(dead))

    async def close(self) -> None:
        """Stop using the queue; the Redis client stays open (it belongs to the caller)."""
        self._closed = True
