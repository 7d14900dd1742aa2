"""Per-client throttles of what a stranger can hammer: signups, logins and WebSocket upgrades.

Refusals are ``RateLimited`` (429 ``rate_limited`` with ``Retry-After``). The buckets live in the
``RateLimiter`` port, so with Redis configured every node shares them.

- **Logins count failures**, per username (guessing one account's password) and per client
  address (guessing many accounts from one place). An attempt takes a token from both buckets
  *before* the password is checked, so a refused attempt costs no scrypt, and gets them back
  unless it failed with ``invalid_credentials``: a user logging in on many devices is never
  refused, and concurrent guesses cannot all slip past a bucket that only a finished failure
  would empty.
- **Signups and upgrades count every attempt** per client address.

A client address is the one uvicorn puts in the ASGI scope: the peer, or the client a trusted
proxy names in ``X-Forwarded-For`` (``MESSENGER_FORWARDED_ALLOW_IPS``). IPv6 clients are counted
by their /64, which one subscriber holds whole and can rotate through freely.

Defaults are generous (a busy client or a burst of signups from one address is normal
traffic); they protect, they do not shape. The cost of a per-username failure limit is that
someone guessing an account's password also delays its owner's logins for a while.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from inbox.core.errors import InvalidCredentials, RateLimited
from inbox.ratelimit.buckets import check_limits
from inbox.ratelimit.port import RateLimiter

UNKNOWN_CLIENT = "unknown"
"""The bucket of clients without an IP address (a Unix socket, a proxy naming no address)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket: ``burst`` at once, then ``rate`` per second."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        check_limits(self.rate, self.burst)


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Every per-client limit (their defaults are the settings', ``MESSENGER_*_BURST`` and
    ``MESSENGER_*_RATE_PER_S``)."""

    login_failures_per_user: Limit
    login_failures_per_address: Limit
    signups_per_address: Limit
    upgrades_per_address: Limit


def client_key(client: tuple[str, int] | None) -> str:
    """The bucket name of an ASGI ``client`` (host, port): IPv4 as is, IPv6 by its /64, an
    IPv4-mapped IPv6 address as IPv4, anything that is not an IP address ``unknown``."""
    try:
        ip = ipaddress.ip_address(client[0] if client else "")
    except ValueError:
        return UNKNOWN_CLIENT
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class ClientThrottle:
    """The signup, login and upgrade limits over one ``RateLimiter``."""

    def __init__(self, limiter: RateLimiter, limits: ClientLimits) -> None:
        self._limiter = limiter
        self.limits = limits

    async def signup(self, client: str) -> None:
        """Take a signup token of ``client`` (a ``client_key``); RateLimited if none."""
        await self._take(f"signup:{client}", self.limits.signups_per_address,
                         "too many signups from this address")

    async def upgrade(self, client: str) -> None:
        """Take a WebSocket upgrade token of ``client``; RateLimited if none."""
        await self._take(f"upgrade:{client}", self.limits.upgrades_per_address,
                         "too many WebSocket connections from this address")

    @asynccontextmanager
    async def login(self, username: str, client: str) -> AsyncIterator[None]:
        """Around one login attempt: RateLimited before the body runs when the address or the
        username has no failure left; the tokens taken are given back unless the body raised
        ``InvalidCredentials``."""
        buckets = ((f"login-addr:{client}", self.limits.login_failures_per_address,
                    "too many failed logins from this address"),
                   (f"login-user:{username}", self.limits.login_failures_per_user,
                    "too many failed logins for this username"))
        taken: list[tuple[str, Limit]] = []
        try:
            for key, limit, refusal in buckets:
                await self._take(key, limit, refusal)
                taken.append((key, limit))
            yield
        except InvalidCredentials:
            raise
        except BaseException:
            await self._give_back(taken)
            raise
        else:
            await self._give_back(taken)

    async def _take(self, key: str, limit: Limit, refusal: str) -> None:
        wait = await self._limiter.acquire(key, limit.rate, limit.burst)
        if wait > 0:
            raise RateLimited(f"{refusal}; retry after the Retry-After delay",
                              retry_after_s=wait)

    async def _give_back(self, taken: list[tuple[str, Limit]]) -> None:
        for key, limit in taken:
            await self._limiter.refund(key, limit.rate, limit.burst)
