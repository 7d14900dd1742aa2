"""Heartbeat timing from the server's ``hello``. No I/O.

The server drops a socket that sends nothing for 3 intervals, so the client pings once per
interval; each ping is answered, so a socket that brings nothing for 3 intervals is dead (a
half-open connection after a network drop) and the client reconnects.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_INTERVAL_S = 0.05
MISSED_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class Heartbeat:
    interval_s: float

    @classmethod
    def from_hello(cls, heartbeat_interval_ms: int) -> Heartbeat:
        return cls(max(MIN_INTERVAL_S, heartbeat_interval_ms / 1000))

    @property
    def ping_every_s(self) -> float:
        return self.interval_s

    @property
    def dead_after_s(self) -> float:
        """Silence from the server after which the socket counts as dead."""
        return MISSED_INTERVALS * self.interval_s
