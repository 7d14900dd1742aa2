"""Cassandra cases of ``bench.bench_append``: raw driver limits, then the durable store.

Raw limit: prepared ``insert_entry`` rows of the store's exact shape (same table, same
columns, 100-byte body, nulls unset, random partitions), sent with ``execute_async`` by
``windows`` submitting threads, each keeping at most ``window`` requests in flight (a
semaphore released from the driver's callback), so neither the submitter nor the callbacks
serialise on each other. A small sweep of (windows, window) is run and the best is the raw
rate. The same rows are also sent as unlogged batches of ``BATCH_MAX_STATEMENTS``, the
request shape the store uses, to separate "batching helps" from "the store adds overhead".

Store: ``CassandraInbox.write`` (inbox rows + history rows of one message), driven from
asyncio like the server does, over 64 conversations so that writes spread over partitions as
the raw rows do. Reported per inbox row (the target's unit); the notes give all rows.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.measure import Sample, drive
from idgen.snowflake import SnowflakeGenerator
from inbox.core.models import EntryDraft, EntryKind, Message
from inbox.messages.durable_cassandra import CassandraInbox, DurableAppend
from inbox.messages.entry_rows import draft_values
from inbox.storage.cassandra_schema import bucket_of
from inbox.storage.cql_session import CqlSession
from inbox.storage.cql_writes import BATCH_MAX_STATEMENTS

BODY = "x" * 100
CONVERSATIONS = 64
RAW_SWEEP = ((1, 256), (1, 1024), (4, 128))  # (windows, requests in flight per window)


def _row(gen: SnowflakeGenerator) -> tuple[Any, ...]:
    """An ``insert_entry`` row as ``CassandraInbox.write`` binds it for a 100-byte message
    (its columns from ``draft_values``, so the row follows the schema)."""
    pos = gen.next_id()
    draft = EntryDraft(EntryKind.MESSAGE, pos, "g:1", 1, 1, int(time.time() * 1000), body=BODY)
    return (random.randrange(10**12), bucket_of(pos), pos, *draft_values(draft), 1)


def _windowed(make: Callable[[SnowflakeGenerator], Any], requests: int, windows: int,
              window: int, session: Any) -> tuple[float, list[float]]:  # fmt: skip
    """Send ``requests`` statements from ``windows`` threads, ``window`` in flight each."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    left = [requests]
    lock = threading.Lock()
    done = threading.Event()

    def submitter(share: int, worker: int) -> None:
        gen = SnowflakeGenerator(100 + worker)
        slots = threading.Semaphore(window)
        for _ in range(share):
            slots.acquire()
            statement = make(gen)
            started = time.perf_counter()

            def finished(result: Any, started: float = started) -> None:
                latencies.append(time.perf_counter() - started)
                if isinstance(result, BaseException):
                    errors.append(result)
                slots.release()
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        done.set()

            session.execute_async(statement).add_callbacks(finished, finished)

    shares = [requests // windows + (1 if i < requests % windows else 0) for i in range(windows)]
    threads = [threading.Thread(target=submitter, args=(share, i)) for i, share in
               enumerate(shares)]  # fmt: skip
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.wait()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} raw writes failed, first: {errors[0]!r}")
    return seconds, latencies


def raw_inserts(cql: CqlSession, rows: int, windows: int, window: int) -> Sample:
    """Single prepared inserts, windowed (see the module docstring)."""
    stmt = cql.prepared["insert_entry"]
    cpu = time.process_time()
    seconds, lat = _windowed(lambda gen: stmt.bind(_row(gen)), rows, windows, window,
                             cql.session)  # fmt: skip
    return Sample(f"cassandra raw inserts {windows}x{window} in flight", rows, seconds, "rows",
                  lat, time.process_time() - cpu)  # fmt: skip


def raw_batches(cql: CqlSession, rows: int, windows: int, window: int) -> Sample:
    """The same rows as unlogged batches of ``BATCH_MAX_STATEMENTS`` (the store's shape)."""
    from cassandra.query import BatchStatement, BatchType

    stmt = cql.prepared["insert_entry"]

    def make(gen: SnowflakeGenerator) -> Any:
        batch = BatchStatement(BatchType.UNLOGGED)
        for _ in range(BATCH_MAX_STATEMENTS):
            batch.add(stmt.bind(_row(gen)))
        return batch

    cpu = time.process_time()
    requests = rows // BATCH_MAX_STATEMENTS
    seconds, lat = _windowed(make, requests, windows, window, cql.session)
    return Sample(f"cassandra raw batches of {BATCH_MAX_STATEMENTS}, {windows}x{window}",
                  requests * BATCH_MAX_STATEMENTS, seconds, "rows", lat,
                  time.process_time() - cpu)  # fmt: skip


async def store_write(inbox: CassandraInbox, fanout: int, messages: int) -> Sample:
    """``CassandraInbox.write`` of ``messages`` messages to groups of ``fanout`` members."""
    groups = [tuple(random.randrange(10**12) for _ in range(fanout)) for _ in
              range(CONVERSATIONS)]  # fmt: skip
    gen = SnowflakeGenerator(3)
    rows = [0]

    async def write(i: int) -> None:
        msg_id = gen.next_id()
        cid = f"g:{i % CONVERSATIONS}"
        draft = EntryDraft(EntryKind.MESSAGE, msg_id, cid, 1, 1, int(time.time() * 1000), BODY)
        message = Message(msg_id, cid, 1, 1, BODY, draft.created_at_ms)
        positions = dict.fromkeys(groups[i % CONVERSATIONS], msg_id)
        await inbox.write(DurableAppend(draft, positions, message), None, 1)
        rows[0] += fanout + 2  # inbox rows, messages, messages_by_id (+ a first-bucket row)

    concurrency = max(4, 512 // (fanout + 2))  # about as many rows in flight as the raw cases
    seconds, lat, cpu = await drive(write, messages, concurrency)
    return Sample(f"cassandra store write fan-out {fanout} (inbox rows)", messages * fanout,
                  seconds, "rows", lat, cpu, all_units=rows[0])  # fmt: skip
