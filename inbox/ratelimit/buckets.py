"""Token-bucket arithmetic: pure functions of a bucket's state and the time."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket's state: ``tokens`` (fractional) as of ``at_ms`` (Unix ms)."""

    tokens: float
    at_ms: int


def check_limits(rate: float, burst: int) -> None:
    """ValueError unless ``rate`` > 0 and ``burst`` >= 1 (a bucket that can never allow)."""
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst!r}")


def take(bucket: Bucket | None, now_ms: int, rate: float, burst: int
         ) -> tuple[Bucket, float]:
    """Refill ``bucket`` up to ``now_ms`` and take one token: the new state and the wait.

    A missing bucket is full. The wait is 0 when the token was taken, else the seconds until
    one token will have refilled (the state then only records the refill).
    """
    bucket, _, wait = take_many(bucket, now_ms, rate, burst, 1)
    return bucket, wait


def take_many(bucket: Bucket | None, now_ms: int, rate: float, burst: int, count: int
              ) -> tuple[Bucket, int, float]:
    """Refill ``bucket`` and take up to ``count`` whole tokens: the new state, how many were
    taken, and (when fewer than ``count``) the seconds until the next token, else 0."""
    check_limits(rate, burst)
    bucket = refill(bucket if bucket is not None else Bucket(float(burst), now_ms),
                    now_ms, rate, burst)
    taken = min(count, math.floor(bucket.tokens))
    left = Bucket(bucket.tokens - taken, bucket.at_ms)
    wait = 0.0 if taken == count else (1 - left.tokens) / rate
    return left, taken, wait


def give_back(bucket: Bucket | None, now_ms: int, rate: float, burst: int) -> Bucket | None:
    """Refill ``bucket`` up to ``now_ms`` and put one token back (at most ``burst``).

    A missing bucket is full and stays missing (None).
    """
    check_limits(rate, burst)
    if bucket is None:
        return None
    bucket = refill(bucket, now_ms, rate, burst)
    return Bucket(min(float(burst), bucket.tokens + 1), bucket.at_ms)


def refill(bucket: Bucket, now_ms: int, rate: float, burst: int) -> Bucket:
    """``bucket`` as of ``now_ms``: ``rate`` tokens per second added, at most ``burst``.

    A clock that steps back refills nothing and keeps the later timestamp, so no time is ever
    credited twice.
    """
    elapsed_ms = max(0, now_ms - bucket.at_ms)
    tokens = min(float(burst), bucket.tokens + elapsed_ms * rate / 1000)
    return Bucket(tokens, max(now_ms, bucket.at_ms))


def full_at_ms(bucket: Bucket, rate: float, burst: int) -> int:
    """When ``bucket`` will be full again (and can be forgotten)."""
    return bucket.at_ms + math.ceil((burst - bucket.tokens) * 1000 / rate)
