"""The wall clock the Snowflake generator reads, behind a small port so tests can drive time."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A wall clock in Unix milliseconds plus a way to wait on it.

    ``now_ms`` may jump forwards or backwards (NTP steps, VM migration); callers that need
    monotonic output (the Snowflake generator) must guard against that themselves. ``sleep``
    blocks the calling thread: the generator only uses it for sub-millisecond waits and for
    bounded waits on a clock that stepped back.
    """

    def now_ms(self) -> int:
        """Return the current wall-clock time as whole milliseconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for about ``seconds`` seconds (may be a fraction of a millisecond)."""
        ...


class SystemClock:
    """The real clock: ``time.time_ns`` truncated to milliseconds, ``time.sleep`` to wait."""

    __slots__ = ()

    def now_ms(self) -> int:
        """Return the system wall-clock time in milliseconds since the Unix epoch."""
        return time.time_ns() // 1_000_000

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` seconds."""
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
"""Shared stateless instance, used as the default clock."""
