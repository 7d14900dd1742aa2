"""The embedded database's thread discipline."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from inbox.storage.sqlite_db import SqliteDatabase


async def test_a_cursor_never_leaves_the_database_thread_open(tmp_path: Path) -> None:
    """A cursor freed on another thread while the database thread runs the next statement is
    an SQLITE_MISUSE error under load; ``run`` closes returned cursors on its own thread."""
    db = SqliteDatabase(tmp_path / "x.db", schema="CREATE TABLE t (k INTEGER PRIMARY KEY);")
    await db.open()
    cursor = await db.run(lambda conn: conn.execute("INSERT INTO t (k) VALUES (1)"))
    with pytest.raises(sqlite3.ProgrammingError):
        cursor.fetchall()

    def insert(k: int) -> Callable[[sqlite3.Connection], sqlite3.Cursor]:
        return lambda conn: conn.execute("INSERT INTO t (k) VALUES (?)", (k,))

    await asyncio.gather(*[db.run(insert(k)) for k in range(2, 400)])
    assert await db.run(lambda conn: conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]) == 399
    await db.close()
