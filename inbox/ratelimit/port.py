"""Rate limits: the ``RateLimiter`` port (token buckets by key) and the per-user send limits
that ``MessageService`` applies. Backends: ``limiter_memory`` (embedded) and
``limiter_redis`` (shared by every node).

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each allowed
request takes one. A refused request takes nothing, so a client that waits the advised time
always gets through. Limits protect the service, they do not shape traffic: defaults are
generous and a limiter that cannot reach its backend lets requests through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from inbox.ratelimit.buckets import check_limits


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
class SendLimits:
    """Per-user send rate: ``rate`` messages per second on average, bursts up to ``burst``."""

    rate: float = 20.0
    burst: int = 200

    def __post_init__(self) -> None:
        check_limits(self.rate, self.burst)


def send_key(user_id: int) -> str:
    """The bucket of a user's sends (all devices, all nodes)."""
    return f"send:{user_id}"
