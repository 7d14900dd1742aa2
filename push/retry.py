"""Retry policy for push delivery. Pure: the caller passes the clock and the randomness.

After each attempt the push worker asks :func:`decide` what to do with the job: finish it,
retry it after a delay (exponential backoff with full jitter, never sooner than the provider's
``Retry-After``), move it to the dead-letter queue, or drop the device's token. A job that
keeps failing is given up when it runs out of attempts or when its next attempt would come
later than ``max_age_s`` after the first one: a provider that recovers after an outage is not
flooded with pushes about messages the user has long since read.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from push.message import PushResult, PushStatus


@dataclass(frozen=True)
class RetryPolicy:
    """Limits for retrying one push: at most ``max_attempts`` sends in all, delays growing
    from ``base_delay_s`` and capped at ``max_delay_s``, and no attempt later than
    ``max_age_s`` after the first."""

    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 3600.0
    max_age_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 < self.base_delay_s <= self.max_delay_s:
            raise ValueError(
                f"need 0 < base_delay_s <= max_delay_s, got {self.base_delay_s}, {self.max_delay_s}"
            )
        if self.max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0, got {self.max_age_s}")


class Action(enum.Enum):
    """What to do with a push job after an attempt."""

    DONE = "done"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    DROP_TOKEN = "drop_token"  # noqa: S105 (not a secret)


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`: ``delay_s`` is meaningful for ``RETRY`` only; ``reason``
    says why (for logs and the dead-letter queue)."""

    action: Action
    delay_s: float = 0.0
    reason: str = ""


def backoff_delay(policy: RetryPolicy, attempt: int, rand: Callable[[], float]) -> float:
    """Full-jitter exponential backoff after attempt number ``attempt`` (1-based): uniform in
    ``[0, min(max_delay_s, base_delay_s * 2 ** (attempt - 1))]``."""
    exponent = min(attempt - 1, 62)  # beyond this the cap has long been reached
    cap = min(policy.max_delay_s, policy.base_delay_s * 2.0**exponent)
    return min(max(rand(), 0.0), 1.0) * cap


def decide(
    policy: RetryPolicy,
    attempt: int,
    result: PushResult,
    first_attempt_at: float,
    now: float,
    rand: Callable[[], float],
) -> Decision:
    """Decide what follows attempt number ``attempt`` (1-based) of a push whose first attempt
    was at ``first_attempt_at``, given its ``result``; ``now`` and ``rand`` (uniform in
    [0, 1)) are injected so that the decision is deterministic under test."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    if result.status is PushStatus.SENT:
        return Decision(Action.DONE)
    if result.status is PushStatus.INVALID_TOKEN:
        return Decision(Action.DROP_TOKEN, reason=result.detail or "invalid token")
    if result.status is PushStatus.FAILED:
        return Decision(Action.DEAD_LETTER, reason=f"permanent failure: {result.detail}")
    if attempt >= policy.max_attempts:
        return Decision(
            Action.DEAD_LETTER, reason=f"gave up after {attempt} attempts: {result.detail}"
        )
    delay = backoff_delay(policy, attempt, rand)
    if result.retry_after_s is not None:
        delay = max(delay, result.retry_after_s)
    age_at_next = now + delay - first_attempt_at
    if age_at_next > policy.max_age_s:
        return Decision(
            Action.DEAD_LETTER,
            reason=(
                f"too old to retry: next attempt {age_at_next:.0f} s after the first "
                f"(limit {policy.max_age_s:.0f} s): {result.detail}"
            ),
        )
    return Decision(Action.RETRY, delay_s=delay, reason=result.detail)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header value (delay-seconds or an
    HTTP-date, relative to the Unix time ``now``); ``None`` when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": HTTP dates are UTC
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
