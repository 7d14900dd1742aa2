"""A socket's bounded queue of outgoing frames, drained by its writer task.

An ``asyncio.Queue`` holds three deques, each allocating a 64-slot block up front: about
2.3 KiB on every socket, idle or not, for a queue that one task drains. A list does the job;
the connection starts a writer when frames wait (``gateway.connection``), so nothing needs to
wait on the queue itself.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    """FIFO of at most ``limit`` waiting items; one consumer drains them in order."""

    def __init__(self, limit: int) -> None:
        self._items: list[T] = []
        self._limit = limit

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, *, force: bool = False) -> bool:
        """Queue ``item``; False (nothing queued) when ``limit`` items wait already, unless
        ``force`` (a closing sentinel must get in even then)."""
        if len(self._items) >= self._limit and not force:
            return False
        self._items.append(item)
        return True

    def drain(self) -> list[T]:
        """Every waiting item, in order (none: an empty list)."""
        items, self._items = self._items, []
        return items
