"""The embedded MuteStore, in the SQLite file of ``SqliteDatabase``."""

from __future__ import annotations

import sqlite3

from inbox.storage.sqlite_db import SqliteDatabase


class SqliteMuteStore:
    """MuteStore over ``SqliteDatabase`` (see ``inbox.conversations.port.MuteStore``)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def set_mute(self, user_id: int, conversation_id: str, until_ms: int | None) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO mutes (user_id, conversation_id, until_ms) VALUES (?,?,?)",
                (user_id, conversation_id, until_ms),
            ).close()

        await self._db.run(write)

    async def muted(self, user_id: int, conversation_id: str, now_ms: int) -> bool:
        def query(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT until_ms FROM mutes WHERE user_id = ? AND conversation_id = ?",
                (user_id, conversation_id),
            ).fetchone()
            return row is not None and (row[0] is None or row[0] > now_ms)

        return await self._db.run(query)
