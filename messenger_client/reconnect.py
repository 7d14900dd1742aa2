"""What to do when a socket ends: reconnect after a delay, or stop. No I/O.

- ``goaway``: the node is draining; come back after its ``reconnect_after_ms`` (plus a little
  jitter so its clients do not all land at once). Not a failure: backoff starts over.
- 4000: the server missed our heartbeats (a stalled network); reconnect at once (jittered).
- 4001, or an upgrade refused with 401/403: the credentials are bad; stop (only a new login
  helps) with a ``CredentialsError`` carrying the server's code.
- An upgrade refused with 429, or with 503 and a ``Retry-After`` (a node draining or admitting
  new sockets at its limit): wait at least that long.
- 1013 (slow reader, or a store down on the server) and every other end: back off.
- An upgrade refused with another 4xx (wrong URL...): retrying cannot help; stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from messenger_client.backoff import Backoff
from messenger_client.errors import (
    ApiError,
    CredentialsError,
    MessengerError,
    RateLimited,
    Unavailable,
)

CLOSE_HEARTBEAT = 4000
CLOSE_UNAUTHORIZED = 4001
CLOSE_TRY_AGAIN = 1013


@dataclass(frozen=True, slots=True)
class Closed:
    """How one connection attempt ended."""

    code: int | None = None
    """WebSocket close code; None when there was no socket or no close frame."""
    reason: str = ""
    refused: ApiError | None = None
    """The HTTP error that refused the upgrade, if it was refused."""
    error: ApiError | None = None
    """The last ``error`` frame without a ref (a 4001 is preceded by one)."""
    goaway_ms: int | None = None
    uptime_s: float = 0.0
    """How long the socket was up after ``hello`` (0 when it never got there)."""


@dataclass(frozen=True, slots=True)
class Reconnect:
    delay_s: float


@dataclass(frozen=True, slots=True)
class Stop:
    error: MessengerError


def plan(closed: Closed, backoff: Backoff) -> Reconnect | Stop:
    """The next step after ``closed`` (see module docstring); updates ``backoff``."""
    if closed.uptime_s >= backoff.policy.stable_after_s:
        backoff.reset()
    if closed.refused is not None:
        return _after_refusal(closed.refused, backoff)
    if closed.code == CLOSE_UNAUTHORIZED:
        if isinstance(closed.error, CredentialsError):
            return Stop(closed.error)
        return Stop(CredentialsError(closed.reason or "unauthorized",
                                     "the server closed the socket: credentials refused"))
    if closed.goaway_ms is not None:
        backoff.reset()
        return Reconnect(closed.goaway_ms / 1000 + backoff.jitter())
    if closed.code == CLOSE_HEARTBEAT:
        return Reconnect(backoff.jitter())
    return Reconnect(backoff.next_delay())


def _after_refusal(error: ApiError, backoff: Backoff) -> Reconnect | Stop:
    if error.status in (401, 403):
        return Stop(CredentialsError(error.code, error.message, error.status))
    if isinstance(error, RateLimited):
        return Reconnect(max(error.retry_after_s, backoff.next_delay()))
    if isinstance(error, Unavailable) and error.retry_after_s is not None:
        # The server booked this client a turn; Retry-After counts whole seconds, so come
        # back anywhere within that second: its clients then arrive evenly, not in a wave.
        return Reconnect(error.retry_after_s + backoff.jitter(1.0))
    if 400 <= error.status < 500 and error.status != 408:
        return Stop(error)
    return Reconnect(backoff.next_delay())
