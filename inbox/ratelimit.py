"""Rate limits: the ``RateLimiter`` port, token-bucket arithmetic, the in-memory limiter and the
per-user send limits (applied by ``MessageService``).

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each allowed
request takes one. A refused request takes nothing, so a client that waits the advised time
always gets through. Limits protect the service, they do not shape traffic (docs/errors.md):
defaults are generous and a limiter that cannot reach its backend lets requests through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from idgen.clock import Clock


class RateLimiter(Protocol):
    """Token buckets by key (``send:<user_id>``, ``typing:<user_id>:<cid>``).

    Contract:
    - ``acquire`` and ``refund`` are atomic per key: concurrent callers (on any node sharing
      the backend) never take more than ``burst`` tokens at once nor more than ``rate`` per
      second over time.
    - It returns 0 when a token was taken, else the seconds until one will be there (> 0), in
      which case nothing was taken.
    - A key unused long enough to refill completely may be forgotten (it reads as full).
    - It never raises because its backend is unreachable: it then allows (fail open), since
      refusing every send while a cache is down would be worse than not limiting for a while.
    """

    async def acquire(self, key: str, rate: float, burst: int) -> float:
        """Take one token from ``key``'s bucket; 0 if allowed, else the seconds to wait."""
        ...

    async def acquire_many(self, key: str, rate: float, burst: int, count: int
                           ) -> tuple[int, float]:
        """Take up to ``count`` tokens at once (a socket's queued sends): how many were
        taken, and when fewer, the seconds until the next one (else 0)."""
        ...

    async def refund(self, key: str, rate: float, burst: int) -> None:
        """Put back one token that ``acquire`` took, for a request that turned out not to
        count (a login whose password was right, when only failures are limited).

        Atomic like ``acquire``; the bucket never holds more than ``burst`` (a forgotten one
        stays full); never raises (a refund that cannot reach the backend is dropped).
        """
        ...


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket's state: ``tokens`` (fractional) as of ``at_ms`` (Unix ms)."""

    tokens: float
    at_ms: int


def check_limits(rate: float, burst: int) -> None:
    """ValueError unless ``rate`` > 0 and ``burst`` >= 1 (a bucket that can never allow)."""
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst!r}")


def take(bucket: Bucket | None, now_ms: int, rate: float, burst: int
         ) -> tuple[Bucket, float]:
    """Refill ``bucket`` up to ``now_ms`` and take one token: the new state and the wait.

    A missing bucket is full. The wait is 0 when the token was taken, else the seconds until
    one token will have refilled (the state then only records the refill).
    """
    bucket, _, wait = take_many(bucket, now_ms, rate, burst, 1)
    return bucket, wait


def take_many(bucket: Bucket | None, now_ms: int, rate: float, burst: int, count: int
              ) -> tuple[Bucket, int, float]:
    """Refill ``bucket`` and take up to ``count`` whole tokens: the new state, how many were
    taken, and (when fewer than ``count``) the seconds until the next token, else 0."""
    check_limits(rate, burst)
    bucket = refill(bucket if bucket is not None else Bucket(float(burst), now_ms),
                    now_ms, rate, burst)
    taken = min(count, math.floor(bucket.tokens))
    left = Bucket(bucket.tokens - taken, bucket.at_ms)
    wait = 0.0 if taken == count else (1 - left.tokens) / rate
    return left, taken, wait


def give_back(bucket: Bucket | None, now_ms: int, rate: float, burst: int) -> Bucket | None:
    """Refill ``bucket`` up to ``now_ms`` and put one token back (at most ``burst``).

    A missing bucket is full and stays missing (None).
    """
    check_limits(rate, burst)
    if bucket is None:
        return None
    bucket = refill(bucket, now_ms, rate, burst)
    return Bucket(min(float(burst), bucket.tokens + 1), bucket.at_ms)


def refill(bucket: Bucket, now_ms: int, rate: float, burst: int) -> Bucket:
    """``bucket`` as of ``now_ms``: ``rate`` tokens per second added, at most ``burst``.

    A clock that steps back refills nothing and keeps the later timestamp, so no time is ever
    credited twice.
    """
    elapsed_ms = max(0, now_ms - bucket.at_ms)
    tokens = min(float(burst), bucket.tokens + elapsed_ms * rate / 1000)
    return Bucket(tokens, max(now_ms, bucket.at_ms))


def full_at_ms(bucket: Bucket, rate: float, burst: int) -> int:
    """When ``bucket`` will be full again (and can be forgotten)."""
    return bucket.at_ms + math.ceil((burst - bucket.tokens) * 1000 / rate)


class MemoryRateLimiter:
    """The embedded default: buckets in this process's memory (one node, so per user overall).

    Buckets that have refilled completely are dropped every ``sweep_every`` calls, so memory
    stays proportional to the keys active in the last ``burst / rate`` seconds.
    """

    def __init__(self, clock: Clock, sweep_every: int = 1024) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[Bucket, int]] = {}  # key -> (state, full at ms)
        self._sweep_every = sweep_every
        self._calls = 0

    async def acquire(self, key: str, rate: float, burst: int) -> float:
        """Take a token from ``key``'s bucket (see ``RateLimiter``); never awaits anything."""
        _, wait = await self.acquire_many(key, rate, burst, 1)
        return wait

    async def acquire_many(self, key: str, rate: float, burst: int, count: int
                           ) -> tuple[int, float]:
        """Take up to ``count`` tokens (see ``RateLimiter``); never awaits anything."""
        now_ms = self._clock.now_ms()
        self._calls += 1
        if self._calls % self._sweep_every == 0:
            self._sweep(now_ms)
        held = self._buckets.get(key)
        bucket, taken, wait = take_many(held[0] if held else None, now_ms, rate, burst, count)
        self._buckets[key] = (bucket, full_at_ms(bucket, rate, burst))
        return taken, wait

    async def refund(self, key: str, rate: float, burst: int) -> None:
        """Put one token back into ``key``'s bucket (see ``RateLimiter``)."""
        held = self._buckets.get(key)
        bucket = give_back(held[0] if held else None, self._clock.now_ms(), rate, burst)
        if bucket is not None:
            self._buckets[key] = (bucket, full_at_ms(bucket, rate, burst))

    def __len__(self) -> int:
        """How many buckets are held (for tests of the sweep)."""
        return len(self._buckets)

    def _sweep(self, now_ms: int) -> None:
        full = [key for key, (_, full_at) in self._buckets.items() if full_at <= now_ms]
        for key in full:
            del self._buckets[key]


@dataclass(frozen=True, slots=True)
class SendLimits:
    """Per-user send rate: ``rate`` messages per second on average, bursts up to ``burst``."""

    rate: float = 20.0
    burst: int = 200

    def __post_init__(self) -> None:
        check_limits(self.rate, self.burst)


def send_key(user_id: int) -> str:
    """The bucket of a user's sends (all devices, all nodes)."""
    return f"send:{user_id}"
