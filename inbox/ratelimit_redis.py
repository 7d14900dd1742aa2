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

from redis.asyncio import Redis
from redis.exceptions import RedisError

from inbox.ratelimit import check_limits

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV[1] rate (tokens/s), ARGV[2] burst. Returns the wait in microseconds
# (0 = a token was taken). Same arithmetic as inbox.ratelimit.take.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
ts = math.max(ts, now)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + (ts - now) + 1)
return wait
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
        self._timeout_s = timeout_s
        self._cooldown_s = cooldown_s
        self._skip_until = 0.0  # event-loop time

    async def acquire(self, key: str, rate: float, burst: int) -> float:
        """Take one token (see ``RateLimiter``); allows when Redis cannot answer (fail open)."""
        check_limits(rate, burst)
        loop = asyncio.get_running_loop()
        if loop.time() < self._skip_until:
            return 0.0
        try:
            async with asyncio.timeout(self._timeout_s):
                wait_us = await self._acquire(keys=[bucket_key(key)], args=[repr(rate), burst])
        except (RedisError, TimeoutError) as exc:
            log.warning("rate limiter unavailable for %.0f s, allowing: %r", self._cooldown_s, exc)
            self._skip_until = loop.time() + self._cooldown_s
            return 0.0
        return int(wait_us) / 1_000_000
