"""Snowflake ids under a renewable worker-id lease that can be lost and taken again.

A node whose lease is lost (Redis said so, or it could not renew before the TTL) must stop
issuing ids with that worker id at once, since another node may take it. Refusing forever
would turn a Redis restart into an outage of every node, so ``LeasedSnowflake`` leases again
(any free worker id) in the background and issues ids with the new one; meanwhile
``next_id`` raises ``LeaseLostError``.

It waits ``hold_off_ms`` after the loss before issuing again. A Redis that restarts empty
drops every lease at once, while their holders keep issuing until their next renewal fails
(at most one lease TTL later); another node, or this one, may meanwhile have taken the same
worker id, and a clock behind by a few milliseconds would then repeat ids. Waiting one TTL
plus the tolerated clock skew outlasts every former holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from idgen.clock import Clock
from idgen.lease import LeaseLostError
from idgen.snowflake import SnowflakeGenerator

log = logging.getLogger(__name__)


class RenewableLease(Protocol):
    """A worker-id lease that renews itself until lost (``lease_redis.RedisWorkerLease``)."""

    async def acquire(self) -> int:
        """Take a free worker id and return it; raise if none can be had now."""
        ...

    async def run_renewal(self, on_lost: Callable[[], None]) -> None:
        """Keep the lease renewed; return only after calling ``on_lost`` (lease gone)."""
        ...

    async def release(self) -> None:
        """Give the worker id back if still held (best effort)."""
        ...


class LeasedSnowflake:
    """Issues Snowflake ids while its lease is held; re-leases after a loss."""

    def __init__(self, lease: RenewableLease, clock: Clock, hold_off_ms: int,
                 retry_s: float = 0.5) -> None:
        """``hold_off_ms``: how long after a loss no id is issued (lease TTL + clock skew)."""
        self._lease = lease
        self._clock = clock
        self._hold_off_ms = hold_off_ms
        self._retry_s = retry_s
        self._generator: SnowflakeGenerator | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take a lease (raises if none can be had now) and keep it in the background."""
        self._generator = SnowflakeGenerator(await self._lease.acquire(), self._clock)
        self._task = asyncio.create_task(self._keep(), name="worker-id-lease")

    def next_id(self) -> int:
        """A fresh id; ``LeaseLostError`` while this node holds no worker id."""
        generator = self._generator
        if generator is None:
            raise LeaseLostError("no Snowflake worker id is leased right now")
        return generator.next_id()

    async def close(self) -> None:
        """Stop renewing and give the worker id back (best effort: it expires anyway)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._generator = None
        with contextlib.suppress(Exception):
            await self._lease.release()

    async def _keep(self) -> None:
        while True:
            await self._lease.run_renewal(self._lost)
            # Lease again only after the hold-off: a lease taken now would have to be
            # renewed meanwhile, and the ids must wait anyway (see the module docstring).
            await asyncio.sleep(self._hold_off_ms / 1000)
            while True:
                try:
                    worker_id = await self._lease.acquire()
                    break
                except Exception as exc:  # Redis down or every id taken: keep trying
                    log.warning("could not lease a worker id yet: %r", exc)
                    await asyncio.sleep(self._retry_s)
            self._generator = SnowflakeGenerator(worker_id, self._clock)
            log.warning("leased Snowflake worker id %d again", worker_id)

    def _lost(self) -> None:
        self._generator = None
