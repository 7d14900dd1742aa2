"""Worker-id lease in Redis, for many messenger nodes sharing one Redis (or Redis Cluster).

One key per worker id, ``idgen:worker:{<n>}`` (the id is the hash tag, so each key is a
single-slot operation in a cluster), holding ``<random token>:<node name>`` with a PX expiry.
A node takes a free id with ``SET NX PX``; renewal and release are Lua compare-and-pexpire /
compare-and-del so they only ever touch a key that still holds this lease's token.

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
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

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
                self._valid_until = self._deadline_from(sent_at)
                return worker_id
        raise LeaseUnavailableError(
            f"all {WORKER_IDS} worker ids are leased in Redis "
            f"({worker_key(0)} .. {worker_key(MAX_WORKER_ID)}); too many live nodes?"
        )

    async def renew(self) -> None:
        """Push the expiry ``ttl_ms`` ahead if the key still holds our token.

        ``LeaseLostError`` (and the lease is dropped) if it expired or another node holds it.
        Redis errors propagate unchanged: the lease is then merely not renewed yet.
        """
        worker_id = self._worker_id
        if worker_id is None:
            raise LeaseLostError("worker-id lease is not held")
        sent_at = self._now()
        renewed = await self._renew_script(
            keys=[worker_key(worker_id)], args=[self._value, self._ttl_ms]
        )
        if not renewed:
            self._worker_id = None
            raise LeaseLostError(
                f"worker id {worker_id} ({worker_key(worker_id)}) expired or is now leased by "
                "another node; stop issuing ids with it"
            )
        if self._worker_id == worker_id:  # not released meanwhile
            self._valid_until = self._deadline_from(sent_at)

    async def release(self) -> None:
        """Delete the key if it still holds our token; a no-op if the lease is not held."""
        worker_id, self._worker_id = self._worker_id, None
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
                    self._worker_id = None
                    on_lost()
                    return
                log.warning("could not renew worker-id lease %s yet: %r", self._worker_id, exc)

    def _deadline_from(self, sent_at: float) -> float:
        ttl_s = self._ttl_ms / 1000
        return sent_at + ttl_s - ttl_s * CLOCK_DRIFT_FACTOR - 0.002

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()
