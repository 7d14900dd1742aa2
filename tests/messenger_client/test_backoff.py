"""Backoff with full jitter, the reconnect plan for each way a socket ends, heartbeat timing."""

from __future__ import annotations

import pytest

from messenger_client.backoff import Backoff, BackoffPolicy
from messenger_client.errors import (
    CredentialsError,
    NotFound,
    RateLimited,
    Unavailable,
    error_from_response,
)
from messenger_client.heartbeat import Heartbeat
from messenger_client.reconnect import Closed, Reconnect, Stop, plan

POLICY = BackoffPolicy(base_s=1.0, cap_s=8.0, stable_after_s=10.0)


def top() -> float:
    return 0.999999


def test_full_jitter_doubles_the_ceiling_up_to_the_cap() -> None:
    backoff = Backoff(POLICY, rng=top)
    delays = [backoff.next_delay() for _ in range(6)]
    assert delays == pytest.approx([1, 2, 4, 8, 8, 8], rel=1e-5)
    draws = iter([0.0, 0.5])
    low = Backoff(POLICY, rng=lambda: next(draws))
    assert [low.next_delay(), low.next_delay()] == [0.0, 1.0]  # uniform in [0, ceiling]


def test_reset_starts_over_and_huge_attempts_do_not_overflow() -> None:
    backoff = Backoff(POLICY, rng=top)
    backoff.attempt = 10_000
    assert backoff.next_delay() == pytest.approx(8, rel=1e-5)
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(1, rel=1e-5)


def reconnect_delay(closed: Closed, backoff: Backoff) -> float:
    step = plan(closed, backoff)
    assert isinstance(step, Reconnect)
    return step.delay_s


def test_goaway_waits_what_the_server_asked_plus_jitter_and_is_no_failure() -> None:
    backoff = Backoff(POLICY, rng=lambda: 0.5)
    backoff.attempt = 3
    delay = reconnect_delay(Closed(1001, goaway_ms=2500), backoff)
    assert delay == pytest.approx(2.5 + 0.5)
    assert backoff.attempt == 0


def test_heartbeat_close_reconnects_at_once_without_growing_the_backoff() -> None:
    backoff = Backoff(POLICY, rng=top)
    for _ in range(3):
        assert reconnect_delay(Closed(4000), backoff) < POLICY.base_s
    assert backoff.attempt == 0


def test_try_again_later_and_lost_connections_back_off_more_each_time() -> None:
    backoff = Backoff(POLICY, rng=top)
    delays = [reconnect_delay(Closed(code), backoff) for code in (1013, None, 1013, 1006)]
    assert delays == pytest.approx([1, 2, 4, 8], rel=1e-5)


def test_a_connection_that_stayed_up_resets_the_backoff() -> None:
    backoff = Backoff(POLICY, rng=top)
    backoff.attempt = 3
    assert reconnect_delay(Closed(None, uptime_s=11), backoff) == pytest.approx(1, rel=1e-5)


def test_4001_stops_with_the_servers_credentials_error() -> None:
    error = CredentialsError("token_expired", "the token has expired")
    step = plan(Closed(4001, "token expired", error=error), Backoff(POLICY))
    assert isinstance(step, Stop) and step.error is error
    step = plan(Closed(4001, "logged out"), Backoff(POLICY))
    assert isinstance(step, Stop) and isinstance(step.error, CredentialsError)
    assert step.error.code == "logged out"


def test_refused_upgrades() -> None:
    unauthorized = plan(Closed(refused=CredentialsError("invalid_token", "bad")), Backoff(POLICY))
    assert isinstance(unauthorized, Stop) and isinstance(unauthorized.error, CredentialsError)
    assert unauthorized.error.code == "invalid_token"
    wrong_url = plan(Closed(refused=NotFound("http_404", "no such page")), Backoff(POLICY))
    assert isinstance(wrong_url, Stop) and isinstance(wrong_url.error, NotFound)
    limited = RateLimited("rate_limited", "slow down", retry_after_s=5)
    assert reconnect_delay(Closed(refused=limited), Backoff(POLICY, rng=top)) == 5
    down = Unavailable("unavailable", "redis down")
    assert reconnect_delay(Closed(refused=down), Backoff(POLICY, rng=top)) == pytest.approx(
        1, rel=1e-5)


def test_an_upgrade_refused_with_503_and_retry_after_comes_back_within_that_second() -> None:
    """A node draining or at its admission limit books the client a turn in whole seconds:
    come back within the second after it (so that a second's clients arrive evenly), however
    many refusals came before, and not at once."""
    refused = error_from_response(503, b'{"error": {"code": "overloaded", "message": "busy"}}',
                                  {"retry-after": "7"})
    assert isinstance(refused, Unavailable) and refused.code == "overloaded"
    draws = iter([0.0, 0.5, 0.999])
    backoff = Backoff(POLICY, rng=lambda: next(draws))
    backoff.attempt = 10
    delays = [reconnect_delay(Closed(refused=refused), backoff) for _ in range(3)]
    assert delays == pytest.approx([7.0, 7.5, 7.999])


def test_heartbeat_pings_each_interval_and_gives_up_after_three() -> None:
    beat = Heartbeat.from_hello(30_000)
    assert (beat.ping_every_s, beat.dead_after_s) == (30.0, 90.0)
    assert Heartbeat.from_hello(1).interval_s == 0.05  # a silly hello cannot make us spin
