"""LeasedSnowflake: no ids while the lease is lost, ids again after re-leasing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from idgen.clock import SYSTEM_CLOCK
from idgen.lease import LeaseLostError
from idgen.lease_redis import RedisWorkerLease
from idgen.leased import LeasedSnowflake
from idgen.snowflake import decode
from tests.servers.redis_server import RedisServer


class ScriptedLease:
    """Hands out worker ids in order; ``lose()`` ends the current renewal as Redis would."""

    def __init__(self, worker_ids: list[int], retakes: bool = False) -> None:
        """``retakes``: whether the lost id is still free to take back (else another node
        holds it)."""
        self.worker_ids = worker_ids
        self.retakes = retakes
        self.failures_before_next = 0
        self.released = False
        self._lost = asyncio.Event()

    async def acquire(self) -> int:
        self._maybe_fail()
        return self.worker_ids.pop(0)

    async def retake(self) -> bool:
        self._maybe_fail()
        return self.retakes

    def _maybe_fail(self) -> None:
        if self.failures_before_next:
            self.failures_before_next -= 1
            raise ConnectionError("redis down")

    async def run_renewal(self, on_lost: Callable[[], None]) -> None:
        await self._lost.wait()
        self._lost.clear()
        on_lost()

    def lose(self) -> None:
        self._lost.set()

    async def release(self) -> None:
        self.released = True


async def test_ids_stop_when_the_lease_is_lost_and_resume_with_a_new_worker_id() -> None:
    lease = ScriptedLease([7, 9])
    ids = LeasedSnowflake(lease, SYSTEM_CLOCK, hold_off_ms=200, retry_s=0.01)
    await ids.start()
    assert decode(ids.next_id()).worker_id == 7
    lease.failures_before_next = 3  # Redis still down for a few attempts
    lease.lose()
    await asyncio.sleep(0)
    with pytest.raises(LeaseLostError):
        ids.next_id()
    lost_at = SYSTEM_CLOCK.now_ms()
    for _ in range(200):
        await asyncio.sleep(0.01)
        try:
            worker = decode(ids.next_id()).worker_id
            break
        except LeaseLostError:
            continue
    assert worker == 9 and lease.failures_before_next == 0
    assert SYSTEM_CLOCK.now_ms() - lost_at >= 200  # no id within the hold-off
    await ids.close()
    assert lease.released
    with pytest.raises(LeaseLostError):
        ids.next_id()


async def first_id(ids: LeasedSnowflake) -> int:
    """The first id issued once ``ids`` holds a worker id again (within 2 s)."""
    for _ in range(200):
        await asyncio.sleep(0.01)
        try:
            return ids.next_id()
        except LeaseLostError:
            continue
    raise AssertionError("no id within 2 s")


async def test_a_lost_id_no_one_else_holds_is_taken_back_at_once_and_stays_monotonic() -> None:
    lease = ScriptedLease([7], retakes=True)
    ids = LeasedSnowflake(lease, SYSTEM_CLOCK, hold_off_ms=60_000, retry_s=0.01)
    await ids.start()
    await ids.ping()
    before = [ids.next_id() for _ in range(5000)]  # past one millisecond's sequence
    lease.failures_before_next = 3  # Redis still down for a few attempts
    lease.lose()
    await asyncio.sleep(0)
    with pytest.raises(LeaseLostError):
        await ids.ping()
    after = await first_id(ids)  # long before the 60 s hold-off
    assert decode(after).worker_id == 7 and after > before[-1]
    await ids.ping()
    await ids.close()


async def test_redis_down_past_the_ttl_then_back_empty_resumes_with_the_same_worker_id(
    fresh_redis_server: RedisServer,
) -> None:
    """Over a real Redis: the lease is lost at its deadline while Redis is down; once Redis
    is back (empty), the node takes its own id back at once rather than after the hold-off."""
    redis = Redis.from_url(fresh_redis_server.url, socket_connect_timeout=0.2)
    ids = LeasedSnowflake(RedisWorkerLease(redis, "node-a", ttl_ms=300), SYSTEM_CLOCK,
                          hold_off_ms=30_000, retry_s=0.05)
    try:
        await ids.start()
        last = ids.next_id()
        fresh_redis_server.kill()
        await asyncio.sleep(0.5)  # past the 0.3 s TTL: lost
        with pytest.raises(LeaseLostError):
            ids.next_id()
        fresh_redis_server.start()
        back = SYSTEM_CLOCK.monotonic()
        again = await first_id(ids)
        assert SYSTEM_CLOCK.monotonic() - back < 1.0
        assert decode(again).worker_id == decode(last).worker_id and again > last
    finally:
        await ids.close()
        await redis.aclose()
