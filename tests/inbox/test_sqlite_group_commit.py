"""The embedded database's group commit: transactions submitted together share one SQLite
transaction, each in a savepoint of its own, so one that fails rolls back alone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from inbox.core.errors import Conflict
from inbox.storage.sqlite_db import SqliteDatabase

T = TypeVar("T")
SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"


class CountingDatabase(SqliteDatabase):
    """Counts the trips to the database thread."""

    hops = 0

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        self.hops += 1
        return await super().run(fn)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[CountingDatabase]:
    database = CountingDatabase(tmp_path / "g.db", schema=SCHEMA)
    await database.open()
    yield database
    await database.close()


def insert(key: str, value: int, fail: bool = False) -> Callable[[sqlite3.Connection], int]:
    def write(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?, ?)", (key, value))
        if fail:
            raise Conflict(f"{key} refused after writing")
        return value

    return write


async def test_transactions_submitted_together_commit_together_and_fail_alone(
    db: CountingDatabase,
) -> None:
    hops = db.hops
    results = await asyncio.gather(db.transaction(insert("a", 1)),
                                   db.transaction(insert("b", 2, fail=True)),
                                   db.transaction(insert("c", 3)),
                                   return_exceptions=True)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], Conflict)
    assert db.hops == hops + 1  # one trip to the database thread for all three
    rows = await db.run(lambda conn: conn.execute("SELECT k, v FROM t ORDER BY k").fetchall())
    assert rows == [("a", 1), ("c", 3)]  # b's insert was rolled back, alone
