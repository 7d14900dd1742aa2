"""Snowflake ids under a renewable worker-id lease that can be lost and taken again.

A node whose lease is lost (another node holds its key, or it could not renew before the
TTL) must stop issuing ids with that worker id at once; meanwhile ``next_id`` raises
``LeaseLostError`` and ``ping`` tells readiness. Refusing forever would turn a Redis outage
into an outage of every node, so ``LeasedSnowflake`` leases again in the background:

1. **Its own worker id, at once**, if the key is absent or still holds its token (the lease's
   ``retake``), keeping its generator, so its ids stay monotonic. The only ids issued with
   that worker id are then its own (unless another node took the key and gave it up again
   between the loss and the re-take: the same hand-over any free id gets). A Redis restarted
   empty under a running node does not even get that far: the renewal sets the vanished key
   again while the lease is still valid, and ids never stop.
2. Otherwise (another node holds it) **any free worker id after ``hold_off_ms``** from the
   loss. A Redis that restarts empty drops every lease at once, while their holders keep
   issuing until their next renewal (at most one lease TTL later); the id we would take may
   be such a holder's, and a clock behind by a few milliseconds would then repeat its ids.
   Waiting one TTL plus the tolerated clock skew outlasts every former holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from idgen.clock import Clock
from idgen.lease import LeaseLostError
from idgen.snowflake import SnowflakeGenerator

log = logging.getLogger(__name__)
T = TypeVar("T")


class RenewableLease(Protocol):
    """A worker-id lease that renews itself until lost (``lease_redis.RedisWorkerLease``)."""

    async def acquire(self) -> int:
        """Take a free worker id and return it; raise if none can be had now."""
        ...

    async def run_renewal(self, on_lost: Callable[[], None]) -> None:
        """Keep the lease renewed; return only after calling ``on_lost`` (lease gone)."""
        ...

    async def retake(self) -> bool:
        """After a loss, lease the same worker id again if no other node holds it (True);
        False if one does. Raises if the backend cannot answer now."""
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

    async def ping(self) -> None:
        """Readiness: ``LeaseLostError`` while ``next_id`` would refuse."""
        if self._generator is None:
            raise LeaseLostError("no Snowflake worker id is leased right now")

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
            generator = self._generator
            await self._lease.run_renewal(self._lost)
            lost_at = self._clock.monotonic()
            if await self._retake():
                self._generator = generator
                log.warning("leased Snowflake worker id %s again",
                            generator.worker_id if generator else "?")
                continue
            # Another node holds our id: a new one only after the hold-off (module docstring).
            waited = self._clock.monotonic() - lost_at
            await self._clock.sleep(max(self._hold_off_ms / 1000 - waited, 0.0))
            worker_id = await self._retrying(self._lease.acquire)
            self._generator = SnowflakeGenerator(worker_id, self._clock)
            log.warning("leased Snowflake worker id %d (another node holds ours)", worker_id)

    async def _retake(self) -> bool:
        return await self._retrying(self._lease.retake)

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until it answers (Redis down, or every id taken: keep trying)."""
        while True:
            try:
                return await call()
            except Exception as exc:
                log.warning("could not lease a worker id yet: %r", exc)
                await self._clock.sleep(self._retry_s)

    def _lost(self) -> None:
        self._generator = None
