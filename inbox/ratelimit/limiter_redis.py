"""The ``RateLimiter`` in Redis: one token bucket per key, shared by every node.

Each bucket is a hash ``ratelimit:{<key>}`` (the whole key is the hash tag, so the single-key
script runs on one slot of a Redis Cluster) holding ``tokens`` and ``ts`` (ms). One Lua script
refills and takes atomically, reading Redis's own ``TIME`` so that nodes with skewed clocks
share one notion of time, and sets an expiry at the moment the bucket would be full again
(a missing bucket reads as full, so expiry never changes an answer).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from inbox.ratelimit.buckets import check_limits

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV[1] rate (tokens/s), ARGV[2] burst. Refills the bucket up to Redis's
# TIME into ``tokens`` and ``ts`` (same arithmetic as inbox.ratelimit.buckets.refill);
# ``missing`` tells whether the bucket existed (a missing bucket is full).
_REFILL_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
local missing = tokens == nil or ts == nil
if missing then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
ts = math.max(ts, now)
"""

# Stores the state and expires the bucket when it would be full again.
_STORE_LUA = """
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + (ts - now) + 1)
"""

# ARGV[3] tokens wanted. Returns {taken, wait in microseconds until the next token when fewer
# were taken, else 0}, like inbox.ratelimit.buckets.take_many.
_ACQUIRE_LUA = _REFILL_LUA + """
local want = tonumber(ARGV[3])
local taken = math.min(want, math.floor(tokens))
tokens = tokens - taken
local wait = 0
if taken < want then
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
""" + _STORE_LUA + """
return {taken, wait}
"""

# Puts one token back, like inbox.ratelimit.buckets.give_back (a missing bucket stays
# missing: full).
_REFUND_LUA = _REFILL_LUA + """
if missing then
  return 0
end
tokens = math.min(burst, tokens + 1)
""" + _STORE_LUA + """
return 0
"""


def bucket_key(key: str) -> str:
    """The Redis key of ``key``'s bucket."""
    return f"ratelimit:{{{key}}}"


class RedisRateLimiter:
    """Token buckets in Redis, so a user's limit holds across every messenger node.

    A limit must not slow requests down: a call gets at most ``timeout_s``, and after a failure
    the limiter allows everything for ``cooldown_s`` without asking Redis (whose client would
    otherwise spend its connect timeout and retries on every request while Redis is down).
    """

    def __init__(self, redis: Redis, timeout_s: float = 1.0, cooldown_s: float = 5.0) -> None:
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._refund = redis.register_script(_REFUND_LUA)
        self._timeout_s = timeout_s
        self._cooldown_s = cooldown_s
        self._skip_until = 0.0  # event-loop time

    async def acquire(self, key: str, rate: float, burst: int) -> float:
        """Take one token (see ``RateLimiter``); allows when Redis cannot answer (fail open)."""
        _, wait = await self.acquire_many(key, rate, burst, 1)
        return wait

    async def acquire_many(self, key: str, rate: float, burst: int, count: int
                           ) -> tuple[int, float]:
        """Take up to ``count`` tokens (see ``RateLimiter``); all of them when Redis cannot
        answer (fail open)."""
        reply = await self._run(self._acquire, key, rate, burst, count)
        if reply is None:
            return count, 0.0
        taken, wait_us = reply
        return int(taken), int(wait_us) / 1_000_000

    async def refund(self, key: str, rate: float, burst: int) -> None:
        """Put one token back (see ``RateLimiter``); dropped when Redis cannot answer."""
        await self._run(self._refund, key, rate, burst)

    async def _run(self, script: AsyncScript, key: str, rate: float, burst: int,
                   *extra: int) -> Any:
        """Run a bucket script; None when Redis is down, in cooldown or too slow."""
        check_limits(rate, burst)
        loop = asyncio.get_running_loop()
        if loop.time() < self._skip_until:
            return None
        try:
            async with asyncio.timeout(self._timeout_s):
                return await script(keys=[bucket_key(key)], args=[repr(rate), burst, *extra])
        except (RedisError, TimeoutError) as exc:
            log.warning("rate limiter unavailable for %.0f s, allowing: %r", self._cooldown_s, exc)
            self._skip_until = loop.time() + self._cooldown_s
            return None
