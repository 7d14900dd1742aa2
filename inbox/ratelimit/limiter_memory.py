"""The embedded ``RateLimiter``: token buckets in this process's memory."""

from __future__ import annotations

from idgen.clock import Clock
from inbox.ratelimit.buckets import Bucket, full_at_ms, give_back, take_many


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
