"""Cassandra ``ConversationStore``: per-user conversation rows, hidden messages, unread counts.

``user_conversations ((user_id), conversation_id)`` holds, per user and conversation:
- ``last_msg_id`` and ``joined_msg_id``: *max-registers*, every write ``USING TIMESTAMP
  <value>`` so last-write-wins keeps the largest whatever order writes (and replays) land in;
  no read-before-write, no Paxos on the send path. Nothing else writes these cells.
- ``read_up_to``: moved with a compare-and-set (``IF read_up_to < ?`` / ``IF read_up_to =
  null``), so of two equal concurrent reads exactly one reports that it moved the marker.

A group's newest activity is one row of ``group_activity`` (a max-register too) rather than a
cell per member: a message to 100 members writes one index row, not 100. Members' rows hold
their join point (written when they join) and read marker; listing merges in the group's
activity. Direct chats keep the per-user cell (two writes per message).

No counter tables (a retried increment counts twice) and no deletes: unread counts are
counted from the ``messages`` history partitions (``store_cassandra``), newest bucket first
and only above the user's marker, so a read conversation costs no query at all. Deletions
"for me" are rows of the small ``hidden_messages ((user_id, conversation_id), msg_id)``
table, never tombstones. A user's conversation list is one partition read, sorted here by
activity (at most ``MAX_CONVERSATIONS`` rows), with at most ``UNREAD_CONCURRENCY`` unread
counts in flight. ``departures ((conversation_id), msg_id DESC, user_id)`` rows expire after
``DEPARTURE_RETENTION_MS`` (a TTL), and are read newest first down to a message's id only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from inbox.conversations.port import DEPARTURE_RETENTION_MS
from inbox.core.models import ConversationState, Message, MessageStatus
from inbox.storage.cassandra_schema import EPOCH_BUCKET, bucket_of
from inbox.storage.cql_session import CqlSession

MAX_CONVERSATIONS: Final = 5000
"""Conversations listed per user (one partition page)."""
UNREAD_PAGE: Final = 1000
"""Rows fetched per query while counting unread messages."""
UNREAD_CONCURRENCY: Final = 16
"""Conversations whose unread messages are counted at once (each costs a few queries)."""

CONVERSATION_STATEMENTS: Final = {
    "conv_raise_last": "UPDATE user_conversations USING TIMESTAMP ? SET last_msg_id = ? "
    "WHERE user_id = ? AND conversation_id = ?",
    "conv_raise_joined": "UPDATE user_conversations USING TIMESTAMP ? SET joined_msg_id = ? "
    "WHERE user_id = ? AND conversation_id = ?",
    "conv_raise_group": "UPDATE group_activity USING TIMESTAMP ? SET last_msg_id = ? "
    "WHERE conversation_id = ?",
    "conv_group_last": "SELECT conversation_id, last_msg_id FROM group_activity "
    "WHERE conversation_id IN ?",
    "conv_read_if_lower": "UPDATE user_conversations SET read_up_to = ? "
    "WHERE user_id = ? AND conversation_id = ? IF read_up_to < ?",
    "conv_read_if_null": "UPDATE user_conversations SET read_up_to = ? "
    "WHERE user_id = ? AND conversation_id = ? IF read_up_to = null",
    "conv_read_marker": "SELECT read_up_to FROM user_conversations "
    "WHERE user_id = ? AND conversation_id = ?",
    "conv_list": "SELECT conversation_id, last_msg_id, read_up_to, joined_msg_id "
    f"FROM user_conversations WHERE user_id = ? LIMIT {MAX_CONVERSATIONS}",
    "conv_ids": "SELECT conversation_id, last_msg_id, joined_msg_id "
    f"FROM user_conversations WHERE user_id = ? LIMIT {MAX_CONVERSATIONS}",
    "conv_depart": "INSERT INTO departures (conversation_id, msg_id, user_id) "
    f"VALUES (?, ?, ?) USING TTL {DEPARTURE_RETENTION_MS // 1000}",
    "conv_departed": "SELECT user_id FROM departures WHERE conversation_id = ? AND msg_id > ?",
    "conv_first_bucket": "SELECT first_bucket FROM conversations WHERE conversation_id = ?",
    "conv_unread_rows": "SELECT msg_id, sender_id, deleted FROM messages "
    "WHERE conversation_id = ? AND bucket = ? AND msg_id > ? AND msg_id < ? LIMIT ?",
    "conv_hide": "INSERT INTO hidden_messages (user_id, conversation_id, msg_id) "
    "VALUES (?, ?, ?)",
    "conv_hidden": "SELECT msg_id FROM hidden_messages WHERE user_id = ? AND "
    "conversation_id = ? AND msg_id >= ? AND msg_id <= ?",
    "conv_message_ref": "SELECT conversation_id, bucket FROM messages_by_id WHERE msg_id = ?",
    "conv_message_row": "SELECT msg_id, conversation_id, sender_id, sender_device_id, body, "
    "created_at_ms, deleted FROM messages WHERE conversation_id = ? AND bucket = ? "
    "AND msg_id = ?",
}


def _is_group(conversation_id: str) -> bool:
    return conversation_id.startswith("g:")


def _applied(rows: list[tuple[Any, ...]]) -> tuple[bool, Any]:
    """An LWT answer: (applied, the current value of the conditioned column when refused)."""
    applied = bool(rows and rows[0][0])
    current = rows[0][1] if rows and not applied and len(rows[0]) > 1 else None
    return applied, current


class CassandraConversationStore:
    """``inbox.conversations.port.ConversationStore`` on Cassandra (see the module docstring)."""

    def __init__(self, cql: CqlSession) -> None:
        """Use a ``CqlSession`` prepared with ``CONVERSATION_STATEMENTS``."""
        self._cql = cql

    async def record_activity(self, user_ids: Sequence[int], conversation_id: str,
                              msg_id: int) -> None:
        """Raise the newest activity to ``msg_id`` (max-registers): the group's one row, or
        each user's cell of a direct chat."""
        if _is_group(conversation_id):
            await self._cql.write_batched(
                [("conv_raise_group", (msg_id, msg_id, conversation_id))])
            return
        await self._raise("conv_raise_last", user_ids, conversation_id, msg_id)

    async def record_join(self, user_ids: Sequence[int], conversation_id: str,
                          msg_id: int) -> None:
        """Raise each user's join point to ``msg_id`` (max-register)."""
        await self._raise("conv_raise_joined", user_ids, conversation_id, msg_id)

    async def _raise(self, name: str, user_ids: Sequence[int], conversation_id: str,
                     value: int) -> None:
        # Unlogged batches shared with the loop's other writes: max-registers need no
        # atomicity, and 100 join points are then a few requests, not 100.
        await self._cql.write_batched(
            [(name, (value, value, uid, conversation_id)) for uid in dict.fromkeys(user_ids)]
        )

    async def mark_read(self, user_id: int, conversation_id: str, up_to: int) -> bool:
        """Compare-and-set the marker upwards; False when it already was at ``up_to`` or above."""
        key = (user_id, conversation_id)
        while True:
            applied, current = _applied(
                await self._cql.execute("conv_read_if_lower", (up_to, *key, up_to))
            )
            if applied:
                return True
            if current is not None:  # refused because the marker is already >= up_to
                return False
            applied, current = _applied(
                await self._cql.execute("conv_read_if_null", (up_to, *key))
            )
            if applied:
                return True
            if current is not None and current >= up_to:
                return False
            # A concurrent first read set a smaller marker in between: compare again.

    async def read_marker(self, user_id: int, conversation_id: str) -> int:
        """The marker as last written (0 when never read)."""
        rows = await self._cql.execute("conv_read_marker", (user_id, conversation_id))
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    async def conversations(self, user_id: int) -> list[ConversationState]:
        """The user's conversations newest activity first; unread counted concurrently, at
        most ``UNREAD_CONCURRENCY`` at once (a user may have thousands)."""
        rows = await self._with_group_activity(await self._cql.execute("conv_list", (user_id,)))
        active = [row for row in rows if row[1] is not None]
        gate = asyncio.Semaphore(UNREAD_CONCURRENCY)

        async def unread(cid: str, last: int, read: int | None, joined: int | None) -> int:
            async with gate:
                return await self._unread(user_id, cid, last, max(read or 0, joined or 0))

        counts = await asyncio.gather(*(unread(*row) for row in active))
        states = [
            ConversationState(cid, last, read or 0, count)
            for (cid, last, read, _), count in zip(active, counts, strict=True)
        ]
        states.sort(key=lambda s: (-s.last_msg_id, s.conversation_id))
        return states

    async def _unread(self, user_id: int, conversation_id: str, last: int, floor: int) -> int:
        """Messages in ``(floor, last]`` from others, neither deleted nor hidden by the user."""
        if floor >= last:
            return 0
        first_rows = await self._cql.execute("conv_first_bucket", (conversation_id,))
        first = first_rows[0][0] if first_rows and first_rows[0][0] is not None else None
        lowest = max(bucket_of(floor + 1), first if first is not None else EPOCH_BUCKET)
        hidden = await self._hidden_between(user_id, conversation_id, floor + 1, last)
        count = 0
        for bucket in range(bucket_of(last), lowest - 1, -1):
            upper = last + 1
            while True:  # rows come newest first; page downwards inside the bucket
                rows = await self._cql.execute(
                    "conv_unread_rows", (conversation_id, bucket, floor, upper, UNREAD_PAGE)
                )
                count += sum(1 for msg_id, sender, deleted in rows
                             if sender != user_id and not deleted and msg_id not in hidden)
                if len(rows) < UNREAD_PAGE:
                    break
                upper = rows[-1][0]
        return count

    async def _with_group_activity(self, rows: list[tuple[Any, ...]]
                                   ) -> list[tuple[Any, ...]]:
        """``conv_list`` rows with each group's newest activity merged into ``last_msg_id``
        (one ``IN`` read for all the user's groups)."""
        groups = [row[0] for row in rows if _is_group(row[0])]
        if not groups:
            return rows
        latest = {cid: last for cid, last in
                  await self._cql.execute("conv_group_last", (groups,)) if last is not None}
        merged = []
        for cid, last, *rest in rows:
            group_last = latest.get(cid)
            if group_last is not None and (last is None or group_last > last):
                last = group_last
            merged.append((cid, last, *rest))
        return merged

    async def conversation_ids(self, user_id: int) -> list[str]:
        """The ids of the user's conversations with activity (for a group: joined, its
        activity being the group's): one partition read, no counts."""
        rows = await self._cql.execute("conv_ids", (user_id,))
        return [str(cid) for cid, last, joined in rows
                if last is not None or (joined is not None and _is_group(cid))]

    async def record_departure(self, user_ids: Sequence[int], conversation_id: str,
                               msg_id: int) -> None:
        """Insert the departures (expiring after ``DEPARTURE_RETENTION_MS``)."""
        await self._cql.execute_all([
            ("conv_depart", (conversation_id, msg_id, uid)) for uid in dict.fromkeys(user_ids)
        ])  # fmt: skip

    async def departed_since(self, conversation_id: str, msg_id: int) -> list[int]:
        """Who left after ``msg_id``: one slice of the conversation's departures partition."""
        rows = await self._cql.execute("conv_departed", (conversation_id, msg_id))
        return list(dict.fromkeys(int(row[0]) for row in rows))

    async def hide(self, user_id: int, conversation_id: str, msg_id: int) -> None:
        """Record a deletion "for me" (an insert; repeating it changes nothing)."""
        await self._cql.execute("conv_hide", (user_id, conversation_id, msg_id))

    async def hidden(self, user_id: int, conversation_id: str,
                     msg_ids: Sequence[int]) -> set[int]:
        """Those of ``msg_ids`` the user has hidden (one range query over their span)."""
        if not msg_ids:
            return set()
        found = await self._hidden_between(user_id, conversation_id, min(msg_ids), max(msg_ids))
        return found & set(msg_ids)

    async def _hidden_between(self, user_id: int, conversation_id: str, low: int,
                              high: int) -> set[int]:
        rows = await self._cql.execute("conv_hidden", (user_id, conversation_id, low, high))
        return {int(row[0]) for row in rows}

    async def message_status(self, msg_id: int) -> MessageStatus | None:
        """The message (deleted for everyone or not) through ``messages_by_id``."""
        ref = await self._cql.execute("conv_message_ref", (msg_id,))
        if not ref or ref[0][0] is None:
            return None
        rows = await self._cql.execute("conv_message_row", (ref[0][0], ref[0][1], msg_id))
        if not rows or rows[0][4] is None:  # a fenced (never committed) send left no body
            return None
        return MessageStatus(Message(*rows[0][:6]), bool(rows[0][6]))
