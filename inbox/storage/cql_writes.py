"""Write combining for ``cql_session.CqlSession``: many rows, few requests.

A request costs cassandra-driver (Python) and the node far more than a row in it does: on the
2-core test box a single-row insert runs at ~6k requests/s, while batches of 10 rows reach
~14k rows/s. ``WriteCombiner`` therefore sends the rows of every write issued in the same
event-loop iteration (a 100-row fan-out, or the 4 rows of each of many concurrent 1:1 sends)
as unlogged batches of at most ``BATCH_MAX_STATEMENTS`` rows and about ``BATCH_MAX_BYTES``,
rows owned by the same replica together. A write completes when every batch holding one of
its rows has; it fails if any of them failed. Nothing waits for a timer: the flush is the
next loop iteration, so an idle server adds no latency and a busy one batches more.

Unlogged batches give no atomicity, and none is needed: callers write with explicit
timestamps and fence failures (``store_hybrid``), exactly as with concurrent single writes.
The limits keep Cassandra quiet: it warns above 10 partitions per unlogged batch
(``unlogged_batch_across_partitions_warn_threshold``) and above 5 KiB per batch
(``batch_size_warn_threshold``). Used from asyncio only, one event loop per thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from cassandra.query import BatchStatement, BatchType, Statement

BATCH_MAX_STATEMENTS: Final = 10
"""Rows per unlogged batch: Cassandra warns above 10 partitions in one unlogged batch."""
BATCH_MAX_BYTES: Final = 4000
"""Estimated mutation bytes per batch, under Cassandra's 5 KiB ``batch_size_warn_threshold``."""
_ROW_OVERHEAD_BYTES: Final = 300  # what the node counts per row beside text values (measured)

GroupByReplica = Callable[[list[Any]], list[list[Any]]]


def row_bytes(stmt: Any) -> int:
    """Roughly what Cassandra counts for a bound row in a batch: text plus a fixed overhead."""
    size = _ROW_OVERHEAD_BYTES
    for value in stmt.values:
        if isinstance(value, bytes) and len(value) > 8:
            size += len(value)  # serialized text (UTF-8 bytes); numbers are 8 bytes or less
    return size


def chunks(group: list[Any]) -> list[list[Any]]:
    """Cut one replica's rows into batches within the limits, in order."""
    out: list[list[Any]] = []
    chunk: list[Any] = []
    size = 0
    for stmt in group:
        row = row_bytes(stmt)
        if chunk and (len(chunk) >= BATCH_MAX_STATEMENTS or size + row > BATCH_MAX_BYTES):
            out.append(chunk)
            chunk, size = [], 0
        chunk.append(stmt)
        size += row
    if chunk:
        out.append(chunk)
    return out


def as_request(chunk: list[Any]) -> Statement:
    """A lone row goes as itself, more as one unlogged batch."""
    if len(chunk) == 1:
        return chunk[0]
    batch = BatchStatement(BatchType.UNLOGGED)
    for stmt in chunk:
        batch.add(stmt)
    return batch


class _Write:
    """One caller's rows and where its outcome goes."""

    __slots__ = ("rows", "future", "left", "error")

    def __init__(self, rows: list[Any], future: asyncio.Future[None]) -> None:
        self.rows = rows
        self.future = future
        self.left = 0  # batches still out holding one of its rows
        self.error: BaseException | None = None


class WriteCombiner:
    """Coalesces the rows of concurrent writes into shared batches (see the module doc)."""

    def __init__(self, session: Any, by_replica: GroupByReplica,
                 on_error: Callable[[BaseException], BaseException]) -> None:  # fmt: skip
        """Send with the driver ``session``; ``by_replica`` groups bound rows by owner;
        ``on_error`` maps a driver failure to the exception the writers get."""
        self._session = session
        self._by_replica = by_replica
        self._on_error = on_error
        self._pending: dict[asyncio.AbstractEventLoop, list[_Write]] = {}

    async def write(self, rows: Sequence[Any]) -> None:
        """Send bound ``rows`` (with others' rows of this loop iteration); raise the mapped
        error if any batch holding one of them failed."""
        if not rows:
            return
        loop = asyncio.get_running_loop()
        write = _Write(list(rows), loop.create_future())
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append(write)
        await write.future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        writes = self._pending.pop(loop, [])
        owner = {id(row): write for write in writes for row in write.rows}
        try:
            groups = self._by_replica([row for write in writes for row in write.rows])
            batches = [chunk for group in groups for chunk in chunks(group)]
        except Exception as exc:  # every writer must hear about it
            for write in writes:
                write.error = exc
            self._settle(writes)
            return
        holders = [list({id(owner[id(row)]): owner[id(row)] for row in batch}.values())
                   for batch in batches]  # fmt: skip
        for held in holders:
            for write in held:
                write.left += 1
        lock = threading.Lock()

        def done(held: list[_Write], error: BaseException | None) -> None:
            # Runs on the driver's thread: count under the lock, wake the loop once.
            finished: list[_Write] = []
            with lock:
                for write in held:
                    if error is not None and write.error is None:
                        write.error = error
                    write.left -= 1
                    if write.left == 0:
                        finished.append(write)
            if finished:
                loop.call_soon_threadsafe(self._settle, finished)

        for batch, held in zip(batches, holders, strict=True):
            try:
                response = self._session.execute_async(as_request(batch))
            except Exception as exc:  # counted like a failed batch
                done(held, exc)
                continue
            response.add_callbacks(lambda _rows, held=held: done(held, None),
                                   lambda exc, held=held: done(held, exc))  # fmt: skip

    def _settle(self, finished: list[_Write]) -> None:
        for write in finished:
            if write.future.done():
                continue
            if write.error is None:
                write.future.set_result(None)
            else:
                write.future.set_exception(self._on_error(write.error))
