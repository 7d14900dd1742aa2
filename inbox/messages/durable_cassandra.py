"""Cassandra adapter: the durable copy of inboxes, history and idempotency receipts.

``CassandraInbox`` is the durable half of ``store_hybrid.HybridInboxStore``: it stores rows at
positions that the Redis sequencer assigned, with an explicit write timestamp, and deletes
them again with a larger timestamp when an append is fenced (so a late write loses). It does
not order concurrent writers itself; see ``store_hybrid`` for how visibility is decided.
Null columns are bound as ``UNSET_VALUE``: one prepared statement per table, no tombstones.
Appends go out as unlogged batches shared between concurrent writes (``inbox.storage.cql_writes``):
per request, not per row, is where the driver and the node spend their time. Requests go
through ``inbox.cql_session.CqlSession``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cassandra.query import UNSET_VALUE

from idgen.snowflake import min_id_for_ms
from inbox.core.models import Entry, EntryDraft, EntryKind, Message, SendReceipt
from inbox.messages.entry_rows import (
    draft_values,
    entry_from_row,
    message_from_row,
    message_values,
)
from inbox.storage.cassandra_schema import EPOCH_BUCKET, FIRST_BUCKET_TS_BASE, bucket_of
from inbox.storage.cql_session import CqlSession

_ENTRY_COLS: Final = (
    "id, kind, msg_id, conversation_id, sender_id, sender_device_id, created_at_ms, body, "
    "up_to_msg_id, scope, group_json, attachments"
)
_MSG_COLS: Final = ("msg_id, conversation_id, sender_id, sender_device_id, body, created_at_ms, "
                    "attachments")
INBOX_STATEMENTS: Final = {
    "insert_entry": f"INSERT INTO inbox_entries (user_id, bucket, {_ENTRY_COLS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "delete_entry": "DELETE FROM inbox_entries USING TIMESTAMP ? "
    "WHERE user_id = ? AND bucket = ? AND id = ?",
    "read_entries": f"SELECT {_ENTRY_COLS} FROM inbox_entries "
    "WHERE user_id = ? AND bucket = ? AND id > ? AND id <= ? LIMIT ?",
    "last_entry": "SELECT id FROM inbox_entries WHERE user_id = ? AND bucket = ? AND id <= ? "
    "ORDER BY id DESC LIMIT 1",
    "set_inbox_first": "UPDATE inbox_heads USING TIMESTAMP ? SET first_bucket = ? "
    "WHERE user_id = ?",
    "get_inbox_first": "SELECT first_bucket FROM inbox_heads WHERE user_id = ?",
    "insert_message": f"INSERT INTO messages (bucket, {_MSG_COLS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "USING TIMESTAMP ?",
    "insert_message_id": "INSERT INTO messages_by_id (msg_id, conversation_id, bucket) "
    "VALUES (?, ?, ?) USING TIMESTAMP ?",
    "delete_message": "DELETE FROM messages USING TIMESTAMP ? "
    "WHERE conversation_id = ? AND bucket = ? AND msg_id = ?",
    "delete_message_id": "DELETE FROM messages_by_id USING TIMESTAMP ? WHERE msg_id = ?",
    "mark_deleted": "UPDATE messages USING TIMESTAMP ? SET deleted = ? "
    "WHERE conversation_id = ? AND bucket = ? AND msg_id = ?",
    "mark_deleted_id": "UPDATE messages_by_id USING TIMESTAMP ? SET deleted = ? WHERE msg_id = ?",
    "unmark_deleted": "DELETE deleted FROM messages USING TIMESTAMP ? "
    "WHERE conversation_id = ? AND bucket = ? AND msg_id = ?",
    "unmark_deleted_id": "DELETE deleted FROM messages_by_id USING TIMESTAMP ? WHERE msg_id = ?",
    "history": f"SELECT {_MSG_COLS}, deleted FROM messages "
    "WHERE conversation_id = ? AND bucket = ? AND msg_id < ? LIMIT ?",
    "message_by_id": "SELECT conversation_id, bucket, deleted FROM messages_by_id "
    "WHERE msg_id = ?",
    "message_row": f"SELECT {_MSG_COLS}, deleted FROM messages "
    "WHERE conversation_id = ? AND bucket = ? AND msg_id = ?",
    "set_conv_first": "UPDATE conversations USING TIMESTAMP ? SET first_bucket = ? "
    "WHERE conversation_id = ?",
    "get_conv_first": "SELECT first_bucket FROM conversations WHERE conversation_id = ?",
    "insert_receipt": "INSERT INTO sends_by_client_id (sender_id, client_msg_id, msg_id, id, "
    "conversation_id, created_at_ms) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    "delete_receipt": "DELETE FROM sends_by_client_id USING TIMESTAMP ? "
    "WHERE sender_id = ? AND client_msg_id = ?",
    "get_receipt": "SELECT msg_id, id, conversation_id, created_at_ms FROM sends_by_client_id "
    "WHERE sender_id = ? AND client_msg_id = ?",
}
_CONV_FIRST_CACHE: Final = 100_000
MAX_SKEW_MS: Final = 60_000
"""How far ahead of this node's clock a position may be; bounds backward bucket scans."""


def _or_unset(value: Any) -> Any:
    return UNSET_VALUE if value is None else value


@dataclass(frozen=True, slots=True)
class DurableAppend:
    """What one append wrote (or may have written) to Cassandra; enough to fence it."""

    draft: EntryDraft
    positions: Mapping[int, int]
    message: Message | None = None
    idempotency_key: tuple[int, str] | None = None


def _deletes_for_everyone(draft: EntryDraft) -> bool:
    return draft.kind is EntryKind.DELETE and draft.scope == "everyone"


class CassandraInbox:
    """Durable inbox rows, history and receipts at positions chosen by the caller."""

    def __init__(self, cql: CqlSession) -> None:
        """Use a ``CqlSession`` prepared with ``STATEMENTS``."""
        self._cql = cql
        # conversation -> smallest first bucket this process has durably written; the
        # min-register needs no rewrite for later messages (a pure saving of one row each).
        self._conv_first: dict[str, int] = {}

    async def write(self, append: DurableAppend, receipt: SendReceipt | None, ts_us: int) -> None:
        """Write every row of ``append`` with write timestamp ``ts_us``, as unlogged batches
        shared with concurrent writes (``CqlSession.write_batched``)."""
        draft = append.draft
        values = tuple(_or_unset(v) for v in draft_values(draft))
        calls: list[tuple[str, Sequence[Any]]] = [
            ("insert_entry", (user_id, bucket_of(pos), pos, *values, ts_us))
            for user_id, pos in append.positions.items()
        ]
        message = append.message
        first_written: tuple[str, int] | None = None
        if message is not None:
            bucket = bucket_of(message.msg_id)
            row = tuple(_or_unset(v) for v in message_values(message))
            calls += [
                ("insert_message", (bucket, *row, ts_us)),
                ("insert_message_id", (message.msg_id, message.conversation_id, bucket, ts_us)),
            ]  # fmt: skip
            known = self._conv_first.get(message.conversation_id)
            if known is None or bucket < known:
                calls.append(("set_conv_first", (FIRST_BUCKET_TS_BASE - bucket, bucket,
                                                 message.conversation_id)))  # fmt: skip
                first_written = (message.conversation_id, bucket)
        if _deletes_for_everyone(draft):
            bucket = bucket_of(draft.msg_id)
            calls += [
                ("mark_deleted", (ts_us, True, draft.conversation_id, bucket, draft.msg_id)),
                ("mark_deleted_id", (ts_us, True, draft.msg_id)),
            ]
        if append.idempotency_key is not None and receipt is not None:
            sender, client_msg_id = append.idempotency_key
            calls.append(("insert_receipt", (sender, client_msg_id, receipt.msg_id, receipt.id,
                                             receipt.conversation_id, receipt.created_at_ms,
                                             ts_us)))  # fmt: skip
        await self._cql.write_batched(calls)
        if first_written is not None:
            self._remember_first(*first_written)

    def _remember_first(self, conversation_id: str, bucket: int) -> None:
        if len(self._conv_first) >= _CONV_FIRST_CACHE:
            self._conv_first.clear()  # bounded; forgetting only costs a rewrite
        self._conv_first[conversation_id] = min(bucket, self._conv_first.get(conversation_id,
                                                                             bucket))  # fmt: skip

    async def fence(self, append: DurableAppend, ts_us: int) -> None:
        """Delete whatever ``write`` may have stored, with timestamp ``ts_us`` (which must be
        larger than the write's, so a write landing later still loses)."""
        draft = append.draft
        calls: list[tuple[str, Sequence[Any]]] = [
            ("delete_entry", (ts_us, user_id, bucket_of(pos), pos))
            for user_id, pos in append.positions.items()
        ]
        if append.message is not None:
            msg = append.message
            calls += [
                ("delete_message", (ts_us, msg.conversation_id, bucket_of(msg.msg_id), msg.msg_id)),
                ("delete_message_id", (ts_us, msg.msg_id)),
            ]
        if _deletes_for_everyone(draft):
            bucket = bucket_of(draft.msg_id)
            calls += [
                ("unmark_deleted", (ts_us, draft.conversation_id, bucket, draft.msg_id)),
                ("unmark_deleted_id", (ts_us, draft.msg_id)),
            ]
        if append.idempotency_key is not None:
            calls.append(("delete_receipt", (ts_us, *append.idempotency_key)))
        await self._cql.execute_all(calls)

    async def set_first_bucket(self, user_id: int, bucket: int) -> None:
        """Lower the inbox's first bucket to ``bucket`` (a min-register; never raises it)."""
        await self._cql.execute("set_inbox_first", (FIRST_BUCKET_TS_BASE - bucket, bucket, user_id))

    async def first_bucket(self, user_id: int) -> int | None:
        """The inbox's stored first bucket, None when the inbox was never seeded."""
        rows = await self._cql.execute("get_inbox_first", (user_id,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    async def _first_bucket(self, name: str, key: Any) -> int:
        rows = await self._cql.execute(name, (key,))
        stored = int(rows[0][0]) if rows and rows[0][0] is not None else 0
        return max(stored, EPOCH_BUCKET)

    async def read(self, user_id: int, after: int, upto: int, limit: int) -> list[Entry]:
        """Entries with ``after < id <= upto``, oldest first, at most ``limit``."""
        if upto <= after or limit <= 0:
            return []
        bucket = max(bucket_of(after + 1), await self._first_bucket("get_inbox_first", user_id))
        last = bucket_of(upto)
        out: list[Entry] = []
        while bucket <= last and len(out) < limit:
            rows = await self._cql.execute(
                "read_entries", (user_id, bucket, after, upto, limit - len(out))
            )
            out.extend(entry_from_row(row) for row in rows)
            bucket += 1
        return out

    async def max_position(self, user_id: int, now_ms: int, upto: int | None = None) -> int:
        """The largest stored position (``<= upto`` when given), 0 when the inbox is empty.

        Scans buckets backwards from ``now_ms + MAX_SKEW_MS`` to the inbox's first bucket.
        """
        bound = upto if upto is not None else min_id_for_ms(now_ms + MAX_SKEW_MS)
        first = await self._first_bucket("get_inbox_first", user_id)
        for bucket in range(bucket_of(bound), first - 1, -1):
            rows = await self._cql.execute("last_entry", (user_id, bucket, bound))
            if rows:
                return int(rows[0][0])
        return 0

    async def history(
        self, conversation_id: str, before: int | None, limit: int, now_ms: int
    ) -> list[Message]:
        """Messages with ``msg_id < before``, newest first, deleted ones left out."""
        bound = before if before is not None else min_id_for_ms(now_ms + MAX_SKEW_MS)
        first = await self._first_bucket("get_conv_first", conversation_id)
        out: list[Message] = []
        bucket = bucket_of(max(bound - 1, 0))
        while bucket >= first and len(out) < limit:
            rows = await self._cql.execute("history", (conversation_id, bucket, bound, limit + 8))
            for row in rows:
                if not row[7] and len(out) < limit:
                    out.append(message_from_row(row))
            if len(rows) >= limit + 8 and len(out) < limit:
                bound = int(rows[-1][0])  # a run of deleted messages: page within the bucket
                continue
            bucket -= 1
        return out

    async def get_message(self, msg_id: int) -> Message | None:
        """One message by id, or None when unknown or deleted for everyone."""
        rows = await self._cql.execute("message_by_id", (msg_id,))
        if not rows or rows[0][0] is None or rows[0][2]:
            return None
        found = await self._cql.execute("message_row", (rows[0][0], rows[0][1], msg_id))
        if not found or found[0][7] or found[0][4] is None:
            return None
        return message_from_row(found[0])

    async def get_receipt(self, sender_id: int, client_msg_id: str) -> SendReceipt | None:
        """The stored receipt of a send with this idempotency key, if any."""
        rows = await self._cql.execute("get_receipt", (sender_id, client_msg_id))
        return SendReceipt(*rows[0]) if rows else None

    async def ping(self) -> None:
        """Raise ``Unavailable`` unless Cassandra answers a quorum read."""
        await self._cql.execute("get_inbox_first", (0,))
