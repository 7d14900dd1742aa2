"""A socket's bounded queue of outgoing frames, for its one writer task.

An ``asyncio.Queue`` holds three deques, each allocating a 64-slot block up front: about
2.3 KiB on every socket, idle or not, for a queue that one task drains. A list and a single
waiter future do the same job for one consumer.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    """FIFO of at most ``limit`` waiting items; one consumer takes them in order."""

    def __init__(self, limit: int) -> None:
        self._items: list[T] = []
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, *, force: bool = False) -> bool:
        """Queue ``item``; False (nothing queued) when ``limit`` items wait already, unless
        ``force`` (a closing sentinel must get in even then)."""
        if len(self._items) >= self._limit and not force:
            return False
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    async def take(self) -> list[T]:
        """Every waiting item, in order, once there is at least one."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items, self._items = self._items, []
        return items
