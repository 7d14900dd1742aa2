"""Token-bucket arithmetic and the in-memory limiter, on a hand-driven clock."""

from __future__ import annotations

import pytest

from inbox.core.errors import RateLimited
from inbox.ratelimit.buckets import Bucket, full_at_ms, give_back, take, take_many
from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from inbox.ratelimit.port import SendLimits
from tests.push.support import ManualClock

T0 = 1_700_000_000_000


def test_a_new_bucket_is_full_and_allows_burst_then_refuses() -> None:
    bucket: Bucket | None = None
    waits = []
    for _ in range(4):
        bucket, wait = take(bucket, T0, rate=2.0, burst=3)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 0.5]  # one token refills in 1/rate s
    assert bucket == Bucket(0.0, T0)


def test_refused_requests_take_nothing() -> None:
    bucket, _ = take(None, T0, rate=1.0, burst=1)
    for _ in range(5):
        bucket, wait = take(bucket, T0 + 400, rate=1.0, burst=1)
        assert wait == pytest.approx(0.6)
    bucket, wait = take(bucket, T0 + 1000, rate=1.0, burst=1)
    assert wait == 0.0 and bucket.tokens == pytest.approx(0.0)


def test_refill_is_proportional_and_capped_at_burst() -> None:
    bucket = Bucket(0.0, T0)
    bucket, wait = take(bucket, T0 + 250, rate=10.0, burst=5)  # 2.5 tokens back
    assert wait == 0.0 and bucket.tokens == pytest.approx(1.5)
    bucket, wait = take(bucket, T0 + 3_600_000, rate=10.0, burst=5)  # an hour: full, not 36k
    assert wait == 0.0 and bucket.tokens == pytest.approx(4.0)


def test_a_clock_stepping_back_credits_no_time_twice() -> None:
    bucket = Bucket(0.0, T0)
    bucket, wait = take(bucket, T0 - 5000, rate=1.0, burst=10)
    assert wait == pytest.approx(1.0) and bucket == Bucket(0.0, T0)
    bucket, wait = take(bucket, T0 + 1000, rate=1.0, burst=10)
    assert wait == 0.0 and bucket.tokens == pytest.approx(0.0)


def test_give_back_refills_then_adds_one_capped_at_burst() -> None:
    assert give_back(None, T0, rate=1.0, burst=3) is None  # a missing bucket is full
    assert give_back(Bucket(0.0, T0), T0 + 500, rate=1.0, burst=3) == Bucket(1.5, T0 + 500)
    assert give_back(Bucket(2.5, T0), T0 + 500, rate=1.0, burst=3) == Bucket(3.0, T0 + 500)
    assert give_back(Bucket(0.0, T0), T0 - 500, rate=1.0, burst=3) == Bucket(1.0, T0)
    with pytest.raises(ValueError):
        give_back(Bucket(0.0, T0), T0, rate=0.0, burst=3)


def test_wait_is_exact_for_fractional_tokens() -> None:
    bucket, wait = take(Bucket(0.25, T0), T0, rate=0.5, burst=1)
    assert wait == pytest.approx(1.5)  # 0.75 tokens at 0.5/s
    assert full_at_ms(bucket, 0.5, 1) == T0 + 1500


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 5), (float("inf"), 5),
                                             (float("nan"), 5), (1.0, 0)])
def test_limits_that_could_never_allow_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate|burst"):
        take(None, T0, rate, burst)
    with pytest.raises(ValueError, match="rate|burst"):
        SendLimits(rate, burst)


async def test_memory_limiter_follows_the_clock() -> None:
    clock = ManualClock(T0)
    limiter = MemoryRateLimiter(clock)
    assert [await limiter.acquire("k", 1.0, 2) for _ in range(3)] == [0.0, 0.0, 1.0]
    clock.advance(0.5)
    assert await limiter.acquire("k", 1.0, 2) == pytest.approx(0.5)
    assert await limiter.acquire("other", 1.0, 2) == 0.0  # keys are independent
    clock.advance(0.5)
    assert await limiter.acquire("k", 1.0, 2) == 0.0


async def test_memory_limiter_forgets_full_buckets() -> None:
    clock = ManualClock(T0)
    limiter = MemoryRateLimiter(clock, sweep_every=4)
    for key in ("a", "b", "c"):
        await limiter.acquire(key, 10.0, 1)  # each full again after 100 ms
    assert len(limiter) == 3
    clock.advance(0.1)
    await limiter.acquire("d", 10.0, 1)  # the 4th call sweeps a, b, c before taking d
    assert len(limiter) == 1
    assert await limiter.acquire("a", 10.0, 1) == 0.0  # a forgotten bucket reads as full


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    def seconds(wait: float) -> tuple[int, int]:
        exc = RateLimited("slow down", retry_after_s=wait)
        return exc.retry_after, exc.retry_after_ms

    assert seconds(0.0001) == (1, 1)
    assert seconds(1.0) == (1, 1000)
    assert seconds(1.2) == (2, 1200)
    assert seconds(2.5) == (3, 2500)


def test_take_many_takes_what_the_bucket_holds_and_says_when_the_next_comes() -> None:
    bucket, taken, wait = take_many(None, T0, rate=2.0, burst=3, count=5)
    assert taken == 3 and wait == pytest.approx(0.5)
    bucket, taken, wait = take_many(bucket, T0 + 1000, rate=2.0, burst=3, count=1)
    assert (taken, wait) == (1, 0.0) and bucket.tokens == pytest.approx(1.0)
    _, taken, wait = take_many(bucket, T0 + 1000, rate=2.0, burst=3, count=0)
    assert (taken, wait) == (0, 0.0)


async def test_acquire_many_on_the_memory_limiter() -> None:
    clock = ManualClock(T0)
    limiter = MemoryRateLimiter(clock)
    taken, wait = await limiter.acquire_many("k", 1.0, 2, 3)
    assert taken == 2 and wait == pytest.approx(1.0)
    assert await limiter.acquire("k", 1.0, 2) == pytest.approx(1.0)
    clock.advance(1)
    taken, wait = await limiter.acquire_many("k", 1.0, 2, 3)
    assert taken == 1 and wait == pytest.approx(1.0)
