"""The embedded InboxStore: inboxes and history in the SQLite file of ``SqliteDatabase``.

Appends run as one ``BEGIN IMMEDIATE`` transaction on the database's single thread, so each
inbox's positions are assigned and committed in the same order: invariant 1 holds by
construction, and an idempotency key is checked and recorded in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from inbox.core.errors import DomainError, Unavailable
from inbox.core.models import (
    AppendBatch,
    Appended,
    EntryKind,
    InboxPage,
    Message,
    SendReceipt,
)
from inbox.messages.entry_rows import (
    draft_values,
    entry_from_row,
    message_from_row,
    message_values,
)
from inbox.storage.sqlite_db import SqliteDatabase

ENTRY_COLUMNS = (
    "id, kind, msg_id, conversation_id, sender_id, sender_device_id, created_at_ms, body,"
    " up_to_msg_id, scope, grp, attachments"
)
MESSAGE_COLUMNS = ("msg_id, conversation_id, sender_id, sender_device_id, body, created_at_ms,"
                   " attachments")


def next_position(head: int, msg_id: int) -> int:
    """The position after ``head``: Snowflake-shaped (>= msg_id) and strictly increasing."""
    return max(head + 1, msg_id)


def _head(conn: sqlite3.Connection, user_id: int) -> int:
    row = conn.execute("SELECT head FROM heads WHERE user_id = ?", (user_id,)).fetchone()
    return int(row[0]) if row else 0


def _replay(conn: sqlite3.Connection, key: tuple[int, str]) -> SendReceipt | None:
    row = conn.execute(
        "SELECT msg_id, id, conversation_id, created_at_ms FROM sends"
        " WHERE sender_id = ? AND client_msg_id = ?",
        key,
    ).fetchone()
    return SendReceipt(*row) if row else None


def _append(conn: sqlite3.Connection, batch: AppendBatch) -> Appended:
    if batch.idempotency_key is not None:
        earlier = _replay(conn, batch.idempotency_key)
        if earlier is not None:
            return Appended(receipt=earlier, replayed=True)
    draft = batch.draft
    positions: dict[int, int] = {}
    previous: dict[int, int] = {}
    for user_id in dict.fromkeys(batch.user_ids):
        head = _head(conn, user_id)
        position = next_position(head, draft.msg_id)
        conn.execute(
            f"INSERT INTO inbox (user_id, {ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (user_id, position, *draft_values(draft)),
        )
        conn.execute(
            "INSERT INTO heads (user_id, head) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET head = excluded.head",
            (user_id, position),
        )
        positions[user_id] = position
        previous[user_id] = head
    if batch.message is not None:
        conn.execute(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                     message_values(batch.message))
    if draft.kind is EntryKind.DELETE and draft.scope == "everyone":
        # In the same transaction as the delete entries: history and the entries agree.
        conn.execute("UPDATE messages SET deleted = 1 WHERE msg_id = ?", (draft.msg_id,))
    receipt = None
    if batch.receipt_for is not None:
        receipt = SendReceipt(
            msg_id=draft.msg_id,
            id=positions[batch.receipt_for],
            conversation_id=draft.conversation_id,
            created_at_ms=draft.created_at_ms,
        )
        if batch.idempotency_key is not None:
            conn.execute(
                "INSERT INTO sends VALUES (?,?,?,?,?,?)",
                (*batch.idempotency_key, receipt.msg_id, receipt.id, receipt.conversation_id,
                 receipt.created_at_ms),
            )
    return Appended(receipt=receipt, positions=positions, previous=previous)


class SqliteInboxStore:
    """InboxStore over ``SqliteDatabase`` (see ``inbox.messages.port.InboxStore`` for the contract).

    A call's batches are one transaction; concurrent calls share a commit (the database's
    group commit), so a busy node pays one hop to the database thread for many appends.
    """

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def append(self, batch: AppendBatch) -> Appended:
        return await self._db.transaction(lambda conn: _append(conn, batch))

    async def append_many(self, batches: Sequence[AppendBatch]
                          ) -> list[Appended | DomainError]:
        try:
            return list(await self._db.transaction(
                lambda conn: [_append(conn, batch) for batch in batches]))
        except Unavailable as exc:
            return [exc] * len(batches)

    async def read(self, user_id: int, after: int, limit: int) -> InboxPage:
        def query(conn: sqlite3.Connection) -> InboxPage:
            rows = conn.execute(
                f"SELECT {ENTRY_COLUMNS} FROM inbox WHERE user_id = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (user_id, after, limit + 1),
            ).fetchall()
            return InboxPage([entry_from_row(r) for r in rows[:limit]], len(rows) > limit)

        return await self._db.run(query)

    async def head(self, user_id: int) -> int:
        return await self._db.run(lambda conn: _head(conn, user_id))

    async def history(self, conversation_id: str, before: int | None, limit: int) -> list[Message]:
        def query(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?"
                " AND msg_id < ? AND deleted = 0 ORDER BY msg_id DESC LIMIT ?",
                (conversation_id, before if before is not None else 2**63 - 1, limit),
            ).fetchall()
            return [message_from_row(r) for r in rows]

        return await self._db.run(query)

    async def receipt(self, key: tuple[int, str]) -> SendReceipt | None:
        return await self._db.run(lambda conn: _replay(conn, key))

    async def get_message(self, msg_id: int) -> Message | None:
        def query(conn: sqlite3.Connection) -> Message | None:
            row = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE msg_id = ? AND deleted = 0",
                (msg_id,),
            ).fetchone()
            return message_from_row(row) if row else None

        return await self._db.run(query)

    async def ping(self) -> None:
        await self._db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await self._db.close()
