"""Retry policy branches (pure: injected clock and randomness)."""

from __future__ import annotations

import pytest

from push.message import PushResult, PushStatus
from push.retry import Action, Decision, RetryPolicy, decide, parse_retry_after

POLICY = RetryPolicy(max_attempts=8, base_delay_s=1.0, max_delay_s=3600.0, max_age_s=3600.0)
RETRY = PushResult(PushStatus.RETRY, detail="FCM 503 UNAVAILABLE")


def _decide(
    result: PushResult = RETRY,
    attempt: int = 1,
    now: float = 1000.0,
    first: float = 1000.0,
    rand: float = 0.5,
    policy: RetryPolicy = POLICY,
) -> Decision:
    return decide(policy, attempt, result, first_attempt_at=first, now=now, rand=lambda: rand)


def test_sent_is_done() -> None:
    assert _decide(PushResult(PushStatus.SENT)) == Decision(Action.DONE)


def test_invalid_token_drops_the_token() -> None:
    decision = _decide(PushResult(PushStatus.INVALID_TOKEN, detail="FCM 404 NOT_FOUND"))
    assert decision.action is Action.DROP_TOKEN
    assert "404" in decision.reason


def test_permanent_failure_goes_to_dead_letter_at_once() -> None:
    decision = _decide(PushResult(PushStatus.FAILED, detail="APNs 403 InvalidProviderToken"))
    assert decision.action is Action.DEAD_LETTER
    assert "permanent" in decision.reason and "InvalidProviderToken" in decision.reason


def test_first_retry_is_jittered_base_delay() -> None:
    assert _decide(rand=0.5) == Decision(Action.RETRY, delay_s=0.5, reason=RETRY.detail)


def test_backoff_doubles_per_attempt() -> None:
    delays = [_decide(attempt=n, rand=1.0).delay_s for n in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_full_jitter_may_retry_at_once() -> None:
    assert _decide(attempt=5, rand=0.0).delay_s == 0.0


def test_backoff_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(max_attempts=100, max_delay_s=60.0, max_age_s=86400.0)
    assert _decide(attempt=50, rand=1.0, policy=policy).delay_s == 60.0
    assert _decide(attempt=99, rand=0.5, policy=policy).delay_s == 30.0


def test_retry_after_is_a_floor() -> None:
    slow = PushResult(PushStatus.RETRY, retry_after_s=7.0, detail="429")
    assert _decide(slow, attempt=1, rand=0.3).delay_s == 7.0
    # A backoff already longer than Retry-After is kept.
    assert _decide(slow, attempt=6, rand=1.0).delay_s == 32.0


def test_gives_up_after_max_attempts() -> None:
    assert _decide(attempt=7).action is Action.RETRY
    decision = _decide(attempt=8)
    assert decision.action is Action.DEAD_LETTER
    assert "8 attempts" in decision.reason


def test_gives_up_when_next_attempt_would_be_too_old() -> None:
    # 3590 s after the first attempt, a 16 s delay would land past the 3600 s limit.
    decision = _decide(attempt=5, rand=1.0, first=0.0, now=3590.0)
    assert decision.action is Action.DEAD_LETTER
    assert "too old" in decision.reason
    assert _decide(attempt=5, rand=0.5, first=0.0, now=3590.0).action is Action.RETRY


def test_long_retry_after_past_max_age_gives_up() -> None:
    slow = PushResult(PushStatus.RETRY, retry_after_s=7200.0)
    assert _decide(slow).action is Action.DEAD_LETTER


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        _decide(attempt=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay_s": 0.0},
        {"base_delay_s": 10.0, "max_delay_s": 5.0},
        {"max_age_s": 0.0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("-3", 0.0),
        ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0),
        ("Thu, 01 Jan 1970 00:01:40 -0000", 60.0),
        ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0),
        ("soon", None),
        ("inf", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=40.0) == expected
