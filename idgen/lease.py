"""The worker-id lease port: how a node gets a Snowflake worker id no live node shares."""

from __future__ import annotations

from typing import Protocol


class LeaseError(Exception):
    """Base class of worker-id lease failures."""


class LeaseUnavailableError(LeaseError):
    """No worker id can be leased right now (all taken, or the data dir is in use)."""


class LeaseLostError(LeaseError):
    """The lease expired or another holder owns the worker id now: stop issuing ids."""


class WorkerLease(Protocol):
    """A time-limited, exclusive claim on one Snowflake worker id (0..1023).

    Contract:
    - Two live holders never share a worker id: ``acquire`` only returns an id no other
      unexpired lease holds, and a lease is only extended (``renew``) by the holder that took it.
    - A holder that cannot renew before its TTL runs out must stop issuing ids with that worker
      id (its id may already be leased to another node). ``renew`` raising ``LeaseLostError``
      means exactly that; other errors (e.g. the backend is unreachable) mean "not renewed yet",
      and the holder must stop once the TTL has passed since the last successful renewal began.
    - ``release`` gives the id back, but only if this lease still holds it; it is idempotent.
    """

    @property
    def worker_id(self) -> int:
        """The leased worker id; ``RuntimeError`` if the lease is not held."""
        ...

    async def acquire(self) -> int:
        """Lease a free worker id and return it; ``LeaseUnavailableError`` if none is free."""
        ...

    async def renew(self) -> None:
        """Extend the lease; ``LeaseLostError`` if it expired or someone else holds it now."""
        ...

    async def release(self) -> None:
        """Give the worker id back if this lease still holds it; a no-op otherwise."""
        ...
