"""LeasedSnowflake: no ids while the lease is lost, ids again after re-leasing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from idgen.clock import SYSTEM_CLOCK
from idgen.lease import LeaseLostError
from idgen.leased import LeasedSnowflake
from idgen.snowflake import decode


class ScriptedLease:
    """Hands out worker ids in order; ``lose()`` ends the current renewal as Redis would."""

    def __init__(self, worker_ids: list[int]) -> None:
        self.worker_ids = worker_ids
        self.failures_before_next = 0
        self.released = False
        self._lost = asyncio.Event()

    async def acquire(self) -> int:
        if self.failures_before_next:
            self.failures_before_next -= 1
            raise ConnectionError("redis down")
        return self.worker_ids.pop(0)

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
