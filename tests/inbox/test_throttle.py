"""Per-client throttles (``inbox.accounts.throttle``) and the account service that applies
them, on the in-memory limiter with a hand-driven clock and the embedded account store."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable

import pytest

from inbox.accounts.security import TokenIssuer
from inbox.accounts.service import AccountService
from inbox.accounts.store_sqlite import SqliteAccountStore
from inbox.accounts.throttle import ClientLimits, ClientThrottle, Limit, client_key
from inbox.core.errors import InvalidCredentials, InvalidInput, NotFound, RateLimited, Unavailable
from inbox.core.models import User
from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from inbox.storage.sqlite_db import SqliteDatabase
from tests.push.support import ManualClock

PASSWORD = "correct-horse"  # noqa: S105 (a test account's password)
LIMITS = ClientLimits(
    login_failures_per_user=Limit(rate=0.1, burst=3),
    login_failures_per_address=Limit(rate=0.1, burst=5),
    signups_per_address=Limit(rate=1.0, burst=2),
    upgrades_per_address=Limit(rate=2.0, burst=2),
)


def test_client_keys() -> None:
    assert client_key(("203.0.113.7", 5000)) == "203.0.113.7"
    assert client_key(("2001:db8:1:2:3:4:5:6", 1)) == "2001:db8:1:2::/64"
    assert client_key(("2001:db8:1:2:ffff::1", 1)) == "2001:db8:1:2::/64"  # same subscriber
    assert client_key(("::ffff:203.0.113.7", 1)) == "203.0.113.7"
    assert client_key(None) == client_key(("not-an-address", 0)) == "unknown"


def test_limits_refuse_a_bucket_that_can_never_allow() -> None:
    with pytest.raises(ValueError):
        Limit(rate=0.0, burst=1)
    with pytest.raises(ValueError):
        Limit(rate=1.0, burst=0)


async def _refusal(call: Awaitable[object]) -> RateLimited:
    """The RateLimited that ``call`` raises, checked to carry a wait and ``Retry-After``."""
    with pytest.raises(RateLimited) as info:
        await call
    assert info.value.retry_after_s > 0 and "Retry-After" in info.value.http_headers
    return info.value


async def test_signups_and_upgrades_are_counted_per_address_and_refill() -> None:
    clock = ManualClock()
    throttle = ClientThrottle(MemoryRateLimiter(clock), LIMITS)
    for _ in range(2):
        await throttle.signup("a")
        await throttle.upgrade("a")
    refused = await _refusal(throttle.signup("a"))
    assert refused.retry_after_s == pytest.approx(1.0) and refused.retry_after == 1
    assert (await _refusal(throttle.upgrade("a"))).retry_after_s == pytest.approx(0.5)
    await throttle.signup("b")  # another address has its own buckets
    await throttle.upgrade("b")
    clock.advance(1.0)
    await throttle.signup("a")
    await throttle.upgrade("a")


async def _fail(throttle: ClientThrottle, username: str, client: str) -> None:
    with pytest.raises(InvalidCredentials):
        async with throttle.login(username, client):
            raise InvalidCredentials("wrong username or password")


async def test_login_failures_are_counted_and_successes_are_not() -> None:
    clock = ManualClock()
    throttle = ClientThrottle(MemoryRateLimiter(clock), LIMITS)
    for _ in range(10):  # a user logging in many devices is never refused
        async with throttle.login("alice", "a"):
            pass
    for _ in range(3):
        await _fail(throttle, "alice", "a")
    ran = False

    async def attempt() -> None:
        nonlocal ran
        async with throttle.login("alice", "a"):
            ran = True

    refused = await _refusal(attempt())
    assert not ran  # refused before the body: no password check
    assert refused.retry_after_s == pytest.approx(10.0)
    assert "username" in refused.message
    async with throttle.login("bob", "a"):  # the address still has failures left
        pass
    clock.advance(10.0)
    async with throttle.login("alice", "a"):  # the window passed: one more attempt
        pass


async def test_login_failures_are_counted_per_address_across_usernames() -> None:
    throttle = ClientThrottle(MemoryRateLimiter(ManualClock()), LIMITS)
    for n in range(5):
        await _fail(throttle, f"user{n}", "a")
    refused = await _refusal(_enter(throttle, "fresh", "a"))
    assert "address" in refused.message
    async with throttle.login("fresh", "b"):
        pass
    # The refusal took no username token: "fresh" still has all three failures.
    for _ in range(3):
        await _fail(throttle, "fresh", "b")
    await _refusal(_enter(throttle, "fresh", "b"))


async def _enter(throttle: ClientThrottle, username: str, client: str) -> None:
    async with throttle.login(username, client):
        pass


async def test_errors_other_than_wrong_credentials_are_not_failures() -> None:
    throttle = ClientThrottle(MemoryRateLimiter(ManualClock()), LIMITS)
    for error in [NotFound("no device"), Unavailable("store down"), RuntimeError("bug")] * 3:
        with pytest.raises(type(error)):
            async with throttle.login("alice", "a"):
                raise error
    for _ in range(3):
        await _fail(throttle, "alice", "a")
    await _refusal(_enter(throttle, "alice", "a"))


class CountingAccounts(SqliteAccountStore):
    """The embedded account store, counting user lookups (each precedes a password check)."""

    lookups = 0

    async def find_user(self, username: str) -> User | None:
        self.lookups += 1
        return await super().find_user(username)


async def test_a_refused_login_reads_nothing_and_checks_no_password(db: SqliteDatabase) -> None:
    clock = ManualClock()
    accounts = CountingAccounts(db)
    limits = ClientLimits(Limit(0.01, 2), Limit(0.01, 10), Limit(0.01, 1), Limit(0.01, 1))
    auth = AccountService(accounts, TokenIssuer("k" * 32, 3600), itertools.count(1).__next__,
                          clock, ClientThrottle(MemoryRateLimiter(clock), limits))
    await auth.signup("alice", PASSWORD, None, client="a")
    with pytest.raises(InvalidInput):  # invalid input is refused before the limit counts it
        await auth.signup("x", PASSWORD, None, client="b")
    await auth.signup("bob", PASSWORD, None, client="b")
    await _refusal(auth.signup("carol", PASSWORD, None, client="a"))
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await auth.login("alice", "wrong-password", "cli", client="a")
    lookups = accounts.lookups
    for password in ("wrong-password", PASSWORD):
        await _refusal(auth.login("alice", password, "cli", client="a"))
    assert accounts.lookups == lookups
    with pytest.raises(InvalidInput):  # no signup could have made this name: refused first
        await auth.login("Not A Username!", PASSWORD, "cli", client="a")
    assert accounts.lookups == lookups
    device, _ = await auth.login("bob", PASSWORD, "cli", client="a")
    assert device.device_id
