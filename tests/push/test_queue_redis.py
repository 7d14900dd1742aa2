"""RedisQueue specifics on a real Redis: key layout, corrupt entries, a wiped stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
from redis.asyncio import Redis

from push.queue_redis import RedisQueue
from tests.push.support import VISIBILITY_MS, ManualClock, make_job


@pytest.fixture
async def queue(
    redis_client: Redis, manual_clock: ManualClock, redis_stream: str
) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue(
        redis_client, manual_clock, stream=redis_stream, visibility_timeout_ms=VISIBILITY_MS
    )
    try:
        yield queue
    finally:
        await queue.close()


def _slot_tag(key: str) -> str:
    return key[key.index("{") : key.index("}") + 1]


async def test_every_key_shares_the_stream_hash_tag(queue: RedisQueue) -> None:
    keys = [queue.stream, queue.dead, queue.delayed, queue.dedup_key("1:2")]
    assert {_slot_tag(k) for k in keys} == {_slot_tag(queue.stream)}
    unused = Redis()
    default = RedisQueue(unused, ManualClock())
    assert default.stream == "push:{jobs}"
    assert _slot_tag(default.dead) == _slot_tag(default.delayed) == "{jobs}"
    await unused.aclose()


async def test_dedup_key_expires_after_the_window(queue: RedisQueue, redis_client: Redis) -> None:
    await queue.enqueue([make_job("5:5")])
    ttl_ms = await redis_client.pttl(queue.dedup_key("5:5"))
    assert 0 < ttl_ms <= 24 * 3600 * 1000


async def test_retry_waits_in_the_due_time_set(
    queue: RedisQueue, redis_client: Redis, manual_clock: ManualClock
) -> None:
    await queue.enqueue([make_job()])
    [claimed] = await queue.claim("a", 1, 0)
    await queue.retry(claimed, 2.5)

    scheduled = cast(
        list[tuple[bytes, float]],
        await redis_client.zrange(queue.delayed, 0, -1, withscores=True),
    )
    [(member, score)] = scheduled
    assert score == manual_clock.now_ms() + 2500
    assert b'"attempt":2' in member
    assert await redis_client.xlen(queue.stream) == 0


async def test_undecodable_entry_goes_to_dead_letters(
    queue: RedisQueue, redis_client: Redis
) -> None:
    await queue.enqueue([make_job("1:1")])
    await redis_client.xadd(queue.stream, {"job": "not json"})

    [claimed] = await queue.claim("a", 10, 0)
    assert claimed.job.job_id == "1:1"
    [dead] = await queue.dead_letters(10)
    assert (dead.job, dead.raw) == (None, "not json")
    assert dead.reason.startswith("undecodable job")
    assert await queue.claim("a", 10, 0) == []


async def test_queue_recovers_when_the_stream_is_wiped(
    queue: RedisQueue, redis_client: Redis
) -> None:
    await queue.enqueue([make_job("1:1")])
    [claimed] = await queue.claim("a", 10, 0)
    await queue.ack(claimed)
    await redis_client.delete(queue.stream)  # as after a Redis restart without persistence

    assert await queue.enqueue([make_job("1:2")]) == 1
    [again] = await queue.claim("a", 10, 0)
    assert again.job.job_id == "1:2"


async def test_two_queue_objects_share_one_stream(
    queue: RedisQueue, redis_client: Redis, manual_clock: ManualClock
) -> None:
    other = RedisQueue(redis_client, manual_clock, stream=queue.stream)
    await queue.enqueue([make_job("1:1"), make_job("1:2")])
    mine = await queue.claim("a", 1, 0)
    theirs = await other.claim("b", 10, 0)
    assert [c.job.job_id for c in mine + theirs] == ["1:1", "1:2"]
