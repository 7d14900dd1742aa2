"""Worker-id lease in Redis, for many messenger nodes sharing one Redis (or Redis Cluster).

One key per worker id, ``idgen:worker:{<n>}`` (the id is the hash tag, so each key is a
single-slot operation in a cluster), holding ``<random token>:<node name>`` with a PX expiry.
A node takes a free id with ``SET NX PX``; renewal and release are Lua compare-and-pexpire /
compare-and-del so they only ever touch a key that still holds this lease's token.

A key that vanished while its lease is still valid (Redis restarted empty) is set again by the
renewal, and ``retake`` leases the same id again after a loss: both only where the key is
absent or still ours, never over another node's token. The holder's own ids stay monotonic
(it keeps its generator), and no other node can have issued ids with that worker id unless it
took the key and gave it up again in between (see ``idgen.leased``).

Not exported from ``idgen`` so that the embedded default never imports redis.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from idgen.lease import LeaseLostError, LeaseUnavailableError
from idgen.snowflake import MAX_WORKER_ID

log = logging.getLogger(__name__)

WORKER_IDS = MAX_WORKER_ID + 1
CLOCK_DRIFT_FACTOR = 0.01
"""Share of the TTL (plus 2 ms) by which the local deadline undercuts Redis's expiry."""

_RENEW_LUA = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not held and ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
"""Extend the key if it holds our token (1); set it again if it is absent and ARGV[3] is '1'
(2); else 0 (another node holds it, or it is gone and may not be re-created)."""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def worker_key(worker_id: int) -> str:
    """The Redis key of worker id ``worker_id``'s lease."""
    return f"idgen:worker:{{{worker_id}}}"


class RedisWorkerLease:
    """Lease one of the 1024 worker ids in Redis for ``ttl_ms``, renewed by ``run_renewal``.

    The holder counts the lease as valid until ``ttl_ms`` (less a small drift margin) after the
    last successful renewal *was sent*, which is never later than Redis's own expiry.
    """

    def __init__(self, redis: Redis, node_name: str, ttl_ms: int = 30000) -> None:
        """Prepare a lease for node ``node_name`` (stored in the key for operators to read)."""
        if not node_name:
            raise ValueError("node_name must not be empty")
        if ttl_ms < 30:
            raise ValueError(f"ttl_ms must be >= 30, got {ttl_ms}")
        self._redis = redis
        self._node_name = node_name
        self._ttl_ms = ttl_ms
        self._renew_script = redis.register_script(_RENEW_LUA)
        self._release_script = redis.register_script(_RELEASE_LUA)
        self._worker_id: int | None = None
        self._lost_id: int | None = None  # the id held before a loss, for ``retake``
        self._value = ""
        self._valid_until = 0.0  # event-loop time

    @property
    def worker_id(self) -> int:
        """The leased worker id; ``RuntimeError`` if the lease is not held."""
        if self._worker_id is None:
            raise RuntimeError("worker-id lease is not held")
        return self._worker_id

    @property
    def ttl_ms(self) -> int:
        """How long a lease lasts without renewal."""
        return self._ttl_ms

    async def acquire(self) -> int:
        """Take the first free worker id, scanning from a random offset; return it.

        ``LeaseUnavailableError`` when all 1024 are held. If cancelled mid-scan, a key this
        call just set may stay behind until its TTL runs out.
        """
        if self._worker_id is not None:
            raise RuntimeError(f"worker-id lease is already held (worker id {self._worker_id})")
        value = f"{secrets.token_hex(16)}:{self._node_name}"
        offset = secrets.randbelow(WORKER_IDS)
        for step in range(WORKER_IDS):
            worker_id = (offset + step) % WORKER_IDS
            sent_at = self._now()
            if await self._redis.set(worker_key(worker_id), value, nx=True, px=self._ttl_ms):
                self._worker_id, self._value = worker_id, value
                self._lost_id = None
                self._valid_until = self._deadline_from(sent_at)
                return worker_id
        raise LeaseUnavailableError(
            f"all {WORKER_IDS} worker ids are leased in Redis "
            f"({worker_key(0)} .. {worker_key(MAX_WORKER_ID)}); too many live nodes?"
        )

    async def renew(self) -> None:
        """Push the expiry ``ttl_ms`` ahead if the key still holds our token, or set it again
        if it vanished while the lease is still valid here (Redis lost its data: no other
        node can have held it for longer than we went without renewing).

        ``LeaseLostError`` (and the lease is dropped) if another node holds it, or it expired
        past our deadline. Redis errors propagate unchanged: the lease is then merely not
        renewed yet.
        """
        worker_id = self._worker_id
        if worker_id is None:
            raise LeaseLostError("worker-id lease is not held")
        sent_at = self._now()
        renewed = await self._set(worker_id, may_create=sent_at < self._valid_until)
        if not renewed:
            self._worker_id, self._lost_id = None, worker_id
            raise LeaseLostError(
                f"worker id {worker_id} ({worker_key(worker_id)}) expired or is now leased by "
                "another node; stop issuing ids with it"
            )
        if renewed == 2:
            log.warning("worker-id lease %s had vanished from Redis (restarted empty?); "
                        "set it again", worker_id)
        if self._worker_id == worker_id:  # not released meanwhile
            self._valid_until = self._deadline_from(sent_at)

    async def retake(self) -> bool:
        """After a loss, lease the worker id this lease held again if the key is absent or
        still ours; False (and forget that id) when another node holds it.

        Redis errors propagate unchanged (nothing is known yet; try again).
        """
        if self._worker_id is not None:
            return True
        worker_id = self._lost_id
        if worker_id is None:
            return False
        sent_at = self._now()
        if not await self._set(worker_id, may_create=True):
            self._lost_id = None
            return False
        self._worker_id, self._lost_id = worker_id, None
        self._valid_until = self._deadline_from(sent_at)
        return True

    async def _set(self, worker_id: int, *, may_create: bool) -> int:
        """Run the renewal script: 1 extended, 2 set again, 0 not ours."""
        reply = await self._renew_script(keys=[worker_key(worker_id)],
                                         args=[self._value, self._ttl_ms, int(may_create)])
        return int(reply)

    async def release(self) -> None:
        """Delete the key if it still holds our token; a no-op if the lease is not held."""
        worker_id, self._worker_id, self._lost_id = self._worker_id, None, None
        if worker_id is not None:
            await self._release_script(keys=[worker_key(worker_id)], args=[self._value])

    async def run_renewal(self, on_lost: Callable[[], None]) -> None:
        """Renew every ``ttl_ms / 3`` until cancelled; on loss call ``on_lost`` and return.

        The lease counts as lost when Redis says so (``LeaseLostError``) or when the local
        deadline passes without a successful renewal (Redis unreachable or slow): the holder
        must then stop issuing ids, because the key may expire and go to another node.
        """
        interval = self._ttl_ms / 3000
        while True:
            await asyncio.sleep(min(interval, max(self._valid_until - self._now(), 0.0)))
            remaining = self._valid_until - self._now()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    await self.renew()
            except LeaseLostError as exc:
                log.error("worker-id lease lost: %s", exc)
                on_lost()
                return
            except (RedisError, OSError, TimeoutError) as exc:
                if self._now() >= self._valid_until:
                    log.error(
                        "worker-id lease %s not renewed before its TTL (%r); giving it up",
                        self._worker_id,
                        exc,
                    )
                    self._worker_id, self._lost_id = None, self._worker_id
                    on_lost()
                    return
                log.warning("could not renew worker-id lease %s yet: %r", self._worker_id, exc)

    def _deadline_from(self, sent_at: float) -> float:
        ttl_s = self._ttl_ms / 1000
        return sent_at + ttl_s - ttl_s * CLOCK_DRIFT_FACTOR - 0.002

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
