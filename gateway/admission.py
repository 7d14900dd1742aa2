"""The node's door for new WebSockets: shut while the node drains, and metered by a token
bucket so that a reconnect storm queues up instead of swamping the node. No I/O.

Every upgrade that passed the per-address throttle takes a token from one bucket per node
(per process: each ``--workers`` process is a node). An empty bucket refuses with ``NodeBusy``
(HTTP 503 ``overloaded``), and its ``Retry-After`` books the refused client a turn: turns are
handed out ``1 / rate`` seconds apart after those already booked, so refused clients come
back at the pace the bucket refills instead of all together one second later.

Why refuse before the upgrade rather than accept and close with ``1013``: a refusal costs the
node one small HTTP answer, no token check, no registration in the live bus, no ``hello``
and no presence change; ``Retry-After`` is understood by every HTTP client, proxy and load
balancer; and the gateway already refuses upgrades this way (401, 429). Browsers cannot read
the answer to a refused upgrade, so they fall back on their own backoff, as they do for a
429.
"""

from __future__ import annotations

import random

from idgen.clock import Clock
from inbox.accounts.throttle import Limit
from inbox.core.errors import NodeBusy
from inbox.ratelimit.buckets import Bucket, take

MAX_RETRY_S = 60.0
"""The furthest a refused client is sent back (a storm beyond it is booked again later)."""


class Admission:
    """Whether this node takes a new WebSocket now; ``limit`` None admits every one."""

    def __init__(self, clock: Clock, limit: Limit | None = None,
                 rng: random.Random | None = None) -> None:
        self._clock = clock
        self._limit = limit
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self._bucket: Bucket | None = None
        self._booked_ms = 0.0  # the last turn handed to a refused client
        self._drain_window_s: float | None = None

    @property
    def draining(self) -> bool:
        """True once ``start_draining`` was called: the node is going away."""
        return self._drain_window_s is not None

    @property
    def drain_window_s(self) -> float | None:
        """The window its clients are sent back within, once the node drains."""
        return self._drain_window_s

    def start_draining(self, window_s: float) -> None:
        """Refuse every upgrade from now on, sending clients back within ``window_s``."""
        self._drain_window_s = window_s

    def admit(self) -> None:
        """Let one upgrade in, or raise ``NodeBusy`` (``draining`` or ``overloaded``) with
        when to come back."""
        if self._drain_window_s is not None:
            raise NodeBusy("this server is shutting down; reconnect (to any server) after "
                           "the Retry-After delay", code="draining",
                           retry_after_s=self._rng.uniform(0, self._drain_window_s))
        if self._limit is None:
            return
        now_ms = self._clock.now_ms()
        self._bucket, wait = take(self._bucket, now_ms, self._limit.rate, self._limit.burst)
        if wait > 0:
            raise NodeBusy("this server is taking new connections at its limit; reconnect "
                           "after the Retry-After delay", code="overloaded",
                           retry_after_s=self._book(now_ms))

    def _book(self, now_ms: int) -> float:
        """The next free turn after those booked, as seconds from now."""
        assert self._limit is not None  # noqa: S101 (only called with a limit)
        turn = max(float(now_ms), self._booked_ms) + 1000 / self._limit.rate
        self._booked_ms = min(turn, now_ms + MAX_RETRY_S * 1000)
        return (self._booked_ms - now_ms) / 1000
