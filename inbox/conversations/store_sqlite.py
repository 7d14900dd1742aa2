"""The embedded ConversationStore, in the SQLite file of ``SqliteDatabase``.

``user_conversations`` holds one row per (user, conversation): newest activity, read marker
and join point, each only ever raised (``MAX(old, new)`` in one statement, so replays are
harmless). A group's newest activity is its one ``group_activity`` row, merged in when
listing, so a group message writes one index row whatever the group's size.
Unread counts are not stored: they are counted from ``messages`` (the history
table of ``store_sqlite``, same file) through its ``(conversation_id, msg_id)`` index, bounded
below by the marker, so they can never drift from what history shows. ``hidden_messages``
holds deletions "for me"; ``departures`` who left a group conversation when (pruned past
``DEPARTURE_RETENTION_MS`` as new ones are recorded).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from idgen.snowflake import TIMESTAMP_SHIFT
from inbox.conversations.port import DEPARTURE_RETENTION_MS
from inbox.core.models import ConversationState, Message, MessageStatus
from inbox.storage.sqlite_db import SqliteDatabase

_RAISE = (
    "INSERT INTO user_conversations (user_id, conversation_id, {col}) VALUES (?, ?, ?)"
    " ON CONFLICT (user_id, conversation_id)"
    " DO UPDATE SET {col} = MAX({col}, excluded.{col})"
)
# Unread of one row ``c``: messages above max(marker, join point) up to its newest activity,
# from others, not deleted for everyone, not hidden by the user.
_LIST = """
WITH c AS (
  SELECT u.user_id, u.conversation_id, u.read_up_to, u.joined_msg_id,
         MAX(u.last_msg_id, COALESCE(g.last_msg_id, 0)) AS last_msg_id
  FROM user_conversations u LEFT JOIN group_activity g ON g.conversation_id = u.conversation_id
  WHERE u.user_id = ?
)
SELECT c.conversation_id, c.last_msg_id, c.read_up_to,
  CASE WHEN MAX(c.read_up_to, c.joined_msg_id) >= c.last_msg_id THEN 0 ELSE (
    SELECT COUNT(*) FROM messages m
    WHERE m.conversation_id = c.conversation_id
      AND m.msg_id > MAX(c.read_up_to, c.joined_msg_id) AND m.msg_id <= c.last_msg_id
      AND m.sender_id != c.user_id AND m.deleted = 0
      AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = c.user_id
                      AND h.conversation_id = m.conversation_id AND h.msg_id = m.msg_id)
  ) END
FROM c
WHERE c.last_msg_id > 0
ORDER BY c.last_msg_id DESC, c.conversation_id
"""


class SqliteConversationStore:
    """ConversationStore over ``SqliteDatabase`` (contract: ``inbox.conversations.port``)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def record_activity(self, user_ids: Sequence[int], conversation_id: str,
                              msg_id: int) -> None:
        if not conversation_id.startswith("g:"):
            await self._raise("last_msg_id", user_ids, conversation_id, msg_id)
            return
        await self._db.transaction(lambda conn: conn.execute(
            "INSERT INTO group_activity (conversation_id, last_msg_id) VALUES (?, ?)"
            " ON CONFLICT (conversation_id)"
            " DO UPDATE SET last_msg_id = MAX(last_msg_id, excluded.last_msg_id)",
            (conversation_id, msg_id)).close())

    async def record_join(self, user_ids: Sequence[int], conversation_id: str,
                          msg_id: int) -> None:
        await self._raise("joined_msg_id", user_ids, conversation_id, msg_id)

    async def _raise(self, column: str, user_ids: Sequence[int], conversation_id: str,
                     value: int) -> None:
        sql = _RAISE.format(col=column)
        rows = [(uid, conversation_id, value) for uid in dict.fromkeys(user_ids)]
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(sql, rows).close()

        await self._db.transaction(write)

    async def mark_read(self, user_id: int, conversation_id: str, up_to: int) -> bool:
        def move(conn: sqlite3.Connection) -> bool:
            # The WHERE makes a stale or repeated read a no-op; the single database thread
            # serialises concurrent reads, so exactly one of two equal reads moves it.
            cursor = conn.execute(
                "INSERT INTO user_conversations (user_id, conversation_id, read_up_to)"
                " VALUES (?, ?, ?) ON CONFLICT (user_id, conversation_id)"
                " DO UPDATE SET read_up_to = excluded.read_up_to"
                " WHERE excluded.read_up_to > read_up_to",
                (user_id, conversation_id, up_to),
            )
            return cursor.rowcount > 0

        return await self._db.transaction(move)

    async def read_marker(self, user_id: int, conversation_id: str) -> int:
        row = await self._db.run(lambda conn: conn.execute(
            "SELECT read_up_to FROM user_conversations WHERE user_id = ? AND conversation_id = ?",
            (user_id, conversation_id),
        ).fetchone())  # fmt: skip
        return int(row[0]) if row else 0

    async def conversations(self, user_id: int) -> list[ConversationState]:
        def query(conn: sqlite3.Connection) -> list[ConversationState]:
            rows = conn.execute(_LIST, (user_id,)).fetchall()
            return [ConversationState(*row) for row in rows]

        return await self._db.run(query)

    async def conversation_ids(self, user_id: int) -> list[str]:
        rows = await self._db.run(lambda conn: conn.execute(
            "SELECT conversation_id FROM user_conversations WHERE user_id = ?"
            " AND (last_msg_id > 0 OR (conversation_id LIKE 'g:%' AND joined_msg_id > 0))",
            (user_id,),
        ).fetchall())  # fmt: skip
        return [str(row[0]) for row in rows]

    async def record_departure(self, user_ids: Sequence[int], conversation_id: str,
                               msg_id: int) -> None:
        rows = [(conversation_id, msg_id, uid) for uid in dict.fromkeys(user_ids)]
        # Same timestamp shift as the Snowflake's: ids older than the retention by time.
        expired = msg_id - (DEPARTURE_RETENTION_MS << TIMESTAMP_SHIFT)

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR IGNORE INTO departures (conversation_id, msg_id,"
                             " user_id) VALUES (?, ?, ?)", rows).close()
            conn.execute("DELETE FROM departures WHERE conversation_id = ? AND msg_id < ?",
                         (conversation_id, expired)).close()

        await self._db.transaction(write)

    async def departed_since(self, conversation_id: str, msg_id: int) -> list[int]:
        rows = await self._db.run(lambda conn: conn.execute(
            "SELECT DISTINCT user_id FROM departures WHERE conversation_id = ? AND msg_id > ?",
            (conversation_id, msg_id),
        ).fetchall())  # fmt: skip
        return [int(row[0]) for row in rows]

    async def hide(self, user_id: int, conversation_id: str, msg_id: int) -> None:
        await self._db.run(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO hidden_messages (user_id, conversation_id, msg_id)"
                " VALUES (?, ?, ?)",
                (user_id, conversation_id, msg_id),
            )
        )

    async def hidden(self, user_id: int, conversation_id: str,
                     msg_ids: Sequence[int]) -> set[int]:
        if not msg_ids:
            return set()

        def query(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                "SELECT msg_id FROM hidden_messages WHERE user_id = ? AND conversation_id = ?"
                " AND msg_id BETWEEN ? AND ?",
                (user_id, conversation_id, min(msg_ids), max(msg_ids)),
            ).fetchall()
            return {row[0] for row in rows} & set(msg_ids)

        return await self._db.run(query)

    async def message_status(self, msg_id: int) -> MessageStatus | None:
        def query(conn: sqlite3.Connection) -> MessageStatus | None:
            row = conn.execute(
                "SELECT msg_id, conversation_id, sender_id, sender_device_id, body,"
                " created_at_ms, deleted FROM messages WHERE msg_id = ?",
                (msg_id,),
            ).fetchone()
            return MessageStatus(Message(*row[:6]), bool(row[6])) if row else None

        return await self._db.run(query)
