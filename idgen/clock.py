"""The clock every time-dependent part reads, behind a small port so tests can drive time.

Wall time (``now_ms``) stamps ids, tokens, leases and registrations; ``monotonic`` measures
durations (deadlines of an append, give-up times), which a stepped wall clock must not
distort; ``sleep`` waits without holding the event loop. Only the Snowflake generator waits
by blocking (``block``): sub-millisecond pauses inside ``next_id``, which never awaits.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time in Unix milliseconds, a monotonic clock, and ways to wait.

    ``now_ms`` may jump forwards or backwards (NTP steps, VM migration); callers that need
    monotonic output (the Snowflake generator) must guard against that themselves.
    """

    def now_ms(self) -> int:
        """The current wall-clock time as whole milliseconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait about ``seconds`` seconds, letting other tasks run."""
        ...

    def block(self, seconds: float) -> None:
        """Block the calling thread for about ``seconds`` (the Snowflake generator's short
        waits only: anything longer belongs in ``sleep``)."""
        ...


class SystemClock:
    """The real clock: ``time.time_ns`` truncated to milliseconds, ``time.monotonic``,
    ``asyncio.sleep`` and ``time.sleep``."""

    __slots__ = ()

    def now_ms(self) -> int:
        """Return the system wall-clock time in milliseconds since the Unix epoch."""
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def block(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` seconds."""
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
"""Shared stateless instance, used as the default clock."""
