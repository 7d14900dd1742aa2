"""The embedded AttachmentStore: attachment metadata in the SQLite file of ``SqliteDatabase``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from inbox.attachments.port import Attachment, AttachmentState, Reference
from inbox.attachments.rows import COLUMNS, attachment_from_row, attachment_values
from inbox.storage.sqlite_db import SqliteDatabase


def _insert(conn: sqlite3.Connection, a: Attachment) -> None:
    conn.execute(f"INSERT OR REPLACE INTO attachments ({COLUMNS})"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", attachment_values(a))
    if a.gc_due_ms:
        conn.execute("INSERT OR IGNORE INTO attachment_gc VALUES (?, ?)",
                     (a.gc_due_ms, a.attachment_id))


class SqliteAttachmentStore:
    """AttachmentStore over ``SqliteDatabase`` (see ``inbox.attachments.port``)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create(self, attachment: Attachment) -> None:
        await self._db.transaction(lambda conn: _insert(conn, attachment))

    async def complete(self, attachment: Attachment,
                       expected: AttachmentState = AttachmentState.PENDING) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT state FROM attachments WHERE attachment_id = ?",
                               (attachment.attachment_id,)).fetchone()
            if row is None or row[0] != expected.value:
                return False
            _insert(conn, attachment)
            return True

        return await self._db.transaction(update)

    async def get(self, attachment_id: int) -> Attachment | None:
        def query(conn: sqlite3.Connection) -> Attachment | None:
            row = conn.execute(f"SELECT {COLUMNS} FROM attachments WHERE attachment_id = ?",
                               (attachment_id,)).fetchone()
            return attachment_from_row(row) if row else None

        return await self._db.run(query)

    async def delete(self, attachment: Attachment) -> None:
        def remove(conn: sqlite3.Connection) -> None:
            aid = attachment.attachment_id
            conn.execute("DELETE FROM attachments WHERE attachment_id = ?", (aid,))
            conn.execute("DELETE FROM attachment_refs WHERE attachment_id = ?", (aid,))
            conn.execute("DELETE FROM attachment_gc WHERE attachment_id = ?", (aid,))

        await self._db.transaction(remove)

    async def holds(self, sha256: str) -> bool:
        return await self._db.run(lambda conn: conn.execute(
            "SELECT 1 FROM attachments WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone()
            is not None)

    async def add_refs(self, refs: Sequence[Reference]) -> None:
        rows = [(r.attachment_id, r.msg_id, r.conversation_id, r.created_at_ms) for r in refs]
        await self._db.transaction(lambda conn: conn.executemany(
            "INSERT OR IGNORE INTO attachment_refs VALUES (?, ?, ?, ?)", rows))

    async def refs(self, attachment_id: int) -> list[Reference]:
        def query(conn: sqlite3.Connection) -> list[Reference]:
            rows = conn.execute("SELECT attachment_id, msg_id, conversation_id, created_at_ms"
                                " FROM attachment_refs WHERE attachment_id = ?"
                                " ORDER BY msg_id", (attachment_id,)).fetchall()
            return [Reference(*row) for row in rows]

        return await self._db.run(query)

    async def attachments_of(self, msg_id: int) -> list[int]:
        def query(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute("SELECT attachment_id FROM attachment_refs WHERE msg_id = ?"
                                " ORDER BY attachment_id", (msg_id,)).fetchall()
            return [int(row[0]) for row in rows]

        return await self._db.run(query)

    async def schedule(self, attachment_id: int, due_ms: int) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE attachments SET gc_due_ms = ? WHERE attachment_id = ?",
                         (due_ms, attachment_id))
            if due_ms:
                conn.execute("INSERT OR IGNORE INTO attachment_gc VALUES (?, ?)",
                             (due_ms, attachment_id))

        await self._db.transaction(update)

    async def due(self, now_ms: int, limit: int) -> list[tuple[int, int]]:
        def query(conn: sqlite3.Connection) -> list[tuple[int, int]]:
            rows = conn.execute("SELECT attachment_id, due_ms FROM attachment_gc"
                                " WHERE due_ms <= ? ORDER BY due_ms, attachment_id LIMIT ?",
                                (now_ms, limit)).fetchall()
            return [(int(a), int(d)) for a, d in rows]

        return await self._db.run(query)

    async def unschedule(self, attachment_id: int, due_ms: int) -> None:
        await self._db.transaction(lambda conn: conn.execute(
            "DELETE FROM attachment_gc WHERE due_ms = ? AND attachment_id = ?",
            (due_ms, attachment_id)))
