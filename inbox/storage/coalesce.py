"""Coalescing calls: the items submitted during one event-loop iteration run as one batch.

A round trip costs far more than an item in it (a Redis pipeline of 20 commits costs little
more than one commit), so callers that are independent of each other, such as the commits of
concurrent sends, submit their item and await its result, while the batch goes out on the
next loop iteration. Nothing waits for a timer: an idle server adds no latency, a busy one
batches more. Batches do not wait for each other; ``run`` keeps no order between batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs ``run(items)`` once per loop iteration for everything submitted in it.

    ``run`` returns one result per item, in order; if it raises, every item of the batch
    gets the error. At most ``max_items`` go into one batch (more start another).
    """

    def __init__(self, run: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
                 max_items: int = 256) -> None:
        self._run = run
        self._max_items = max_items
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Queue ``item`` for this iteration's batch and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((item, future))
        if len(self._pending) >= self._max_items:
            self._flush()
        return await future

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._execute(batch))
        self._tasks.add(task)  # referenced until done, so it cannot be collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} got {len(results)} results")
        except BaseException as exc:  # every caller of the batch learns of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
