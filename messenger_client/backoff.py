"""Exponential backoff with full jitter (AWS's "Exponential Backoff And Jitter"). No I/O.

The n-th retry waits a uniformly random time in ``[0, min(cap, base * 2**n)]``, so clients
that lost the same server spread out instead of coming back in waves.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base_s: float = 0.5
    cap_s: float = 30.0
    stable_after_s: float = 10.0
    """A connection that stayed up this long was a success: the next failure starts over."""


class Backoff:
    """Retry delays for one client; ``rng`` returns floats in ``[0, 1)`` (injected by tests)."""

    def __init__(self, policy: BackoffPolicy | None = None,
                 rng: Callable[[], float] = random.random) -> None:
        self.policy = policy or BackoffPolicy()
        self.attempt = 0
        self._rng = rng

    def ceiling(self) -> float:
        """The longest the next delay may be."""
        return min(self.policy.cap_s, self.policy.base_s * (1 << min(self.attempt, 62)))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to the cap."""
        delay = self._rng() * self.ceiling()
        self.attempt += 1
        return delay

    def jitter(self, width_s: float | None = None) -> float:
        """A random spread in ``[0, width_s)`` (default ``base``) that does not count as a
        failure."""
        return self._rng() * (self.policy.base_s if width_s is None else width_s)

    def reset(self) -> None:
        self.attempt = 0
