"""The ``RateLimiter`` contract, over the in-memory limiter and a real Redis.

The memory limiter runs on a hand-driven clock; Redis reads its own ``TIME``, so its ``advance``
really waits (rates are high enough that this costs a fraction of a second).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from inbox.ratelimit.limiter_redis import RedisRateLimiter, bucket_key
from inbox.ratelimit.port import RateLimiter
from tests.push.support import ManualClock
from tests.servers.fixtures import RedisEndpoint
from tests.servers.redis_server import RedisServer


@dataclass
class Backend:
    """A limiter under test, a second one sharing its state (another node), and a way to let
    time pass for it."""

    limiter: RateLimiter
    other_node: RateLimiter
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = ManualClock()
        memory = MemoryRateLimiter(clock)

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        yield Backend(memory, memory, advance)
        return
    endpoint: RedisEndpoint = request.getfixturevalue("redis_server")
    a, b = Redis.from_url(endpoint.url), Redis.from_url(endpoint.url)
    yield Backend(RedisRateLimiter(a), RedisRateLimiter(b), asyncio.sleep)
    await a.aclose()
    await b.aclose()


def _key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_allows_the_burst_then_says_how_long_to_wait(backend: Backend) -> None:
    key = _key()
    results = [await backend.limiter.acquire(key, 2.0, 3) for _ in range(3)]
    assert results == [0.0, 0.0, 0.0]
    wait = await backend.limiter.acquire(key, 2.0, 3)
    assert 0.4 < wait <= 0.5  # Redis time may have moved a little since the burst


async def test_keys_are_independent(backend: Backend) -> None:
    a, b = _key(), _key()
    assert await backend.limiter.acquire(a, 0.1, 1) == 0.0
    assert await backend.limiter.acquire(a, 0.1, 1) > 0
    assert await backend.limiter.acquire(b, 0.1, 1) == 0.0


async def test_tokens_refill_at_the_rate_and_refusals_take_nothing(backend: Backend) -> None:
    key = _key()
    assert await backend.limiter.acquire(key, 10.0, 1) == 0.0
    for _ in range(3):
        assert await backend.limiter.acquire(key, 10.0, 1) > 0
    await backend.advance(0.15)
    assert await backend.limiter.acquire(key, 10.0, 1) == 0.0
    assert await backend.limiter.acquire(key, 10.0, 1) > 0


async def test_concurrent_callers_on_two_nodes_share_one_burst(backend: Backend) -> None:
    key = _key()
    calls = [limiter.acquire(key, 0.01, 10)
             for limiter in (backend.limiter, backend.other_node) for _ in range(25)]
    results = await asyncio.gather(*calls)
    assert sum(1 for wait in results if wait == 0.0) == 10
    assert all(wait > 0 for wait in results if wait != 0.0)


async def test_a_bucket_past_its_refill_time_is_full_again(backend: Backend) -> None:
    key = _key()
    for _ in range(2):
        assert await backend.limiter.acquire(key, 20.0, 2) == 0.0
    await backend.advance(0.12)
    assert [await backend.limiter.acquire(key, 20.0, 2) for _ in range(3)][:2] == [0.0, 0.0]


async def test_a_refund_puts_one_token_back_and_never_overfills(backend: Backend) -> None:
    key = _key()
    for _ in range(2):
        assert await backend.limiter.acquire(key, 0.01, 2) == 0.0
    assert await backend.limiter.acquire(key, 0.01, 2) > 0
    await backend.other_node.refund(key, 0.01, 2)  # any node may give it back
    assert await backend.limiter.acquire(key, 0.01, 2) == 0.0
    assert await backend.limiter.acquire(key, 0.01, 2) > 0
    for _ in range(5):  # refunds beyond the burst are capped
        await backend.limiter.refund(key, 0.01, 2)
    assert [await backend.limiter.acquire(key, 0.01, 2) for _ in range(3)][:2] == [0.0, 0.0]
    assert await backend.limiter.acquire(key, 0.01, 2) > 0


async def test_a_refund_of_an_unknown_key_leaves_it_full(backend: Backend) -> None:
    key = _key()
    await backend.limiter.refund(key, 0.01, 2)
    assert [await backend.limiter.acquire(key, 0.01, 2) for _ in range(2)] == [0.0, 0.0]
    assert await backend.limiter.acquire(key, 0.01, 2) > 0


async def test_concurrent_takes_and_refunds_on_two_nodes_balance(backend: Backend) -> None:
    key = _key()

    async def take_and_give_back(limiter: RateLimiter) -> None:
        assert await limiter.acquire(key, 0.01, 50) == 0.0
        await limiter.refund(key, 0.01, 50)

    await asyncio.gather(*(take_and_give_back(limiter) for limiter in
                           (backend.limiter, backend.other_node) for _ in range(20)))
    results = [await backend.limiter.acquire(key, 0.01, 50) for _ in range(51)]
    assert results[:50] == [0.0] * 50 and results[50] > 0


async def test_redis_buckets_expire_once_full_and_are_hash_tagged(redis_server: RedisEndpoint
                                                                  ) -> None:
    client = Redis.from_url(redis_server.url)
    try:
        limiter, key = RedisRateLimiter(client), _key()
        await limiter.acquire(key, 0.5, 4)  # 1 token short: full again in 2 s
        assert bucket_key(key) == f"ratelimit:{{{key}}}"
        assert 1900 <= await client.pttl(bucket_key(key)) <= 2100
        assert float(await client.hget(bucket_key(key), "tokens") or 0) == pytest.approx(3.0)
    finally:
        await client.aclose()


async def test_redis_down_fails_open_quickly_and_recovers(fresh_redis_server: RedisServer
                                                          ) -> None:
    client = Redis.from_url(fresh_redis_server.url)
    limiter, key = RedisRateLimiter(client, timeout_s=0.5, cooldown_s=0.3), _key()
    try:
        assert await limiter.acquire(key, 0.01, 1) == 0.0
        assert await limiter.acquire(key, 0.01, 1) > 0
        fresh_redis_server.kill()
        started = asyncio.get_running_loop().time()
        assert [await limiter.acquire(key, 0.01, 1) for _ in range(20)] == [0.0] * 20
        await limiter.refund(key, 0.01, 1)  # dropped, not raised
        assert asyncio.get_running_loop().time() - started < 1.5  # one timeout, not twenty
        fresh_redis_server.start()  # back, and empty: the bucket reads as full
        await asyncio.sleep(0.3)
        assert await limiter.acquire(key, 0.01, 1) == 0.0
        assert await limiter.acquire(key, 0.01, 1) > 0  # limiting again
    finally:
        await client.aclose()


async def test_several_tokens_at_once_take_what_the_bucket_holds(backend: Backend) -> None:
    key = _key()
    taken, wait = await backend.limiter.acquire_many(key, 2.0, 3, 5)
    assert taken == 3 and 0 < wait <= 0.5
    taken, wait = await backend.other_node.acquire_many(key, 2.0, 3, 2)  # shared, atomic
    assert taken == 0 and 0 < wait <= 0.5
    await backend.advance(1.05)  # two tokens back
    taken, wait = await backend.limiter.acquire_many(key, 2.0, 3, 2)
    assert (taken, wait) == (2, 0.0)
    assert await backend.limiter.acquire(key, 2.0, 3) > 0
