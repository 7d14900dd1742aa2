"""The production AttachmentStore: attachment metadata in Cassandra.

``attachments`` holds one row per upload; ``attachments_by_sha`` answers whether a blob is
still needed; ``attachment_refs`` (by attachment) and ``attachment_refs_by_msg`` (by message)
record which messages refer to what. The collector's schedule is ``attachment_gc``, one
partition per UTC day of due times, so partitions stay bounded; ``attachment_gc_days`` keeps
the first day ever scheduled (a min-register, ``USING TIMESTAMP BASE - day``) and the day
before which every partition has been swept empty (a max-register, ``USING TIMESTAMP day``),
bounding the days a sweep reads. Completing an upload is a compare-and-set on its state.
Null fields are bound as ``UNSET_VALUE`` (no tombstones).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from cassandra.query import UNSET_VALUE

from inbox.attachments.port import Attachment, AttachmentState, Reference
from inbox.attachments.rows import COLUMNS, attachment_from_row, attachment_values
from inbox.storage.cassandra_schema import FIRST_BUCKET_TS_BASE
from inbox.storage.cql_session import CqlSession

DAY_MS: Final = 24 * 3600 * 1000
ATTACHMENT_STATEMENTS: Final = {
    "att_insert": f"INSERT INTO attachments ({COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "att_complete": "UPDATE attachments SET state = ?, name = ?, size = ?, content_type = ?, "
    "sha256 = ?, width = ?, height = ?, thumbnail_id = ?, parent_id = ?, gc_due_ms = ? "
    "WHERE attachment_id = ? IF state = ?",
    "att_get": f"SELECT {COLUMNS} FROM attachments WHERE attachment_id = ?",
    "att_delete": "DELETE FROM attachments WHERE attachment_id = ?",
    "att_sha_add": "INSERT INTO attachments_by_sha (sha256, attachment_id) VALUES (?, ?)",
    "att_sha_delete": "DELETE FROM attachments_by_sha WHERE sha256 = ? AND attachment_id = ?",
    "att_sha_any": "SELECT attachment_id FROM attachments_by_sha WHERE sha256 = ? LIMIT 1",
    "att_ref_add": "INSERT INTO attachment_refs (attachment_id, msg_id, conversation_id, "
    "created_at_ms) VALUES (?, ?, ?, ?)",
    "att_ref_by_msg_add": "INSERT INTO attachment_refs_by_msg (msg_id, attachment_id) "
    "VALUES (?, ?)",
    "att_refs": "SELECT attachment_id, msg_id, conversation_id, created_at_ms "
    "FROM attachment_refs WHERE attachment_id = ? LIMIT 10000",
    "att_refs_delete": "DELETE FROM attachment_refs WHERE attachment_id = ?",
    "att_of_msg": "SELECT attachment_id FROM attachment_refs_by_msg WHERE msg_id = ? "
    "LIMIT 1000",
    "att_set_due": "UPDATE attachments SET gc_due_ms = ? WHERE attachment_id = ?",
    "att_gc_add": "INSERT INTO attachment_gc (day, due_ms, attachment_id) VALUES (?, ?, ?)",
    "att_gc_due": "SELECT attachment_id, due_ms FROM attachment_gc "
    "WHERE day = ? AND due_ms <= ? LIMIT ?",
    "att_gc_delete": "DELETE FROM attachment_gc WHERE day = ? AND due_ms = ? "
    "AND attachment_id = ?",
    "att_gc_day_set": "UPDATE attachment_gc_days USING TIMESTAMP ? SET day = ? WHERE name = ?",
    "att_gc_day_get": "SELECT day FROM attachment_gc_days WHERE name = ?",
}


def _unset(values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(UNSET_VALUE if v is None else v for v in values)


def day_of(ms: int) -> int:
    """The UTC day (since the Unix epoch) a due time falls on: its schedule partition."""
    return ms // DAY_MS


class CassandraAttachmentStore:
    """AttachmentStore over a ``CqlSession`` prepared with ``ATTACHMENT_STATEMENTS``."""

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def create(self, attachment: Attachment) -> None:
        calls: list[tuple[str, Sequence[Any]]] = [
            ("att_insert", _unset(attachment_values(attachment)))]
        if attachment.sha256:
            calls.append(("att_sha_add", (attachment.sha256, attachment.attachment_id)))
        await self._cql.execute_all(calls)
        if attachment.gc_due_ms:
            await self._schedule_entry(attachment.attachment_id, attachment.gc_due_ms)

    async def complete(self, attachment: Attachment,
                       expected: AttachmentState = AttachmentState.PENDING) -> bool:
        a = attachment
        if a.sha256:  # first: a blob is never without its holder (see ``holds``)
            await self._cql.execute("att_sha_add", (a.sha256, a.attachment_id))
        rows = await self._cql.execute("att_complete", _unset((
            a.state.value, a.name, a.size, a.content_type, a.sha256, a.width, a.height,
            a.thumbnail_id, a.parent_id, a.gc_due_ms, a.attachment_id, expected.value)))
        applied = bool(rows and rows[0][0])
        if not applied and a.sha256:
            current = await self.get(a.attachment_id)
            if current is None or current.sha256 != a.sha256:
                await self._cql.execute("att_sha_delete", (a.sha256, a.attachment_id))
        if applied and a.gc_due_ms:
            await self._schedule_entry(a.attachment_id, a.gc_due_ms)
        return applied

    async def get(self, attachment_id: int) -> Attachment | None:
        rows = await self._cql.execute("att_get", (attachment_id,))
        if not rows or rows[0][2] is None:
            return None
        return attachment_from_row(rows[0])

    async def delete(self, attachment: Attachment) -> None:
        a = attachment
        calls: list[tuple[str, Sequence[Any]]] = [
            ("att_delete", (a.attachment_id,)), ("att_refs_delete", (a.attachment_id,))]
        if a.sha256:
            calls.append(("att_sha_delete", (a.sha256, a.attachment_id)))
        if a.gc_due_ms:
            calls.append(("att_gc_delete", (day_of(a.gc_due_ms), a.gc_due_ms,
                                            a.attachment_id)))
        await self._cql.execute_all(calls)

    async def holds(self, sha256: str) -> bool:
        return bool(await self._cql.execute("att_sha_any", (sha256,)))

    async def add_refs(self, refs: Sequence[Reference]) -> None:
        calls: list[tuple[str, Sequence[Any]]] = []
        for r in refs:
            calls += [("att_ref_add", (r.attachment_id, r.msg_id, r.conversation_id,
                                       r.created_at_ms)),
                      ("att_ref_by_msg_add", (r.msg_id, r.attachment_id))]
        await self._cql.execute_all(calls)

    async def refs(self, attachment_id: int) -> list[Reference]:
        rows = await self._cql.execute("att_refs", (attachment_id,))
        return [Reference(int(a), int(m), str(c), int(t)) for a, m, c, t in rows]

    async def attachments_of(self, msg_id: int) -> list[int]:
        return [int(row[0]) for row in await self._cql.execute("att_of_msg", (msg_id,))]

    async def schedule(self, attachment_id: int, due_ms: int) -> None:
        await self._cql.execute("att_set_due", (due_ms, attachment_id))
        if due_ms:
            await self._schedule_entry(attachment_id, due_ms)

    async def _schedule_entry(self, attachment_id: int, due_ms: int) -> None:
        day = day_of(due_ms)
        await self._cql.execute_all([
            ("att_gc_add", (day, due_ms, attachment_id)),
            ("att_gc_day_set", (FIRST_BUCKET_TS_BASE - day, day, "first")),
        ])

    async def due(self, now_ms: int, limit: int) -> list[tuple[int, int]]:
        first = await self._day("first")
        if first is None:
            return []
        swept = await self._day("swept")
        today = day_of(now_ms)
        out: list[tuple[int, int]] = []
        day = max(first, swept or first)
        while day <= today and len(out) < limit:
            rows = await self._cql.execute("att_gc_due", (day, now_ms, limit - len(out)))
            out.extend((int(a), int(d)) for a, d in rows)
            if not rows and day < today:  # a past day never gains entries: skip it for good
                await self._cql.execute("att_gc_day_set", (day + 1, day + 1, "swept"))
            day += 1
        return out

    async def _day(self, name: str) -> int | None:
        rows = await self._cql.execute("att_gc_day_get", (name,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    async def unschedule(self, attachment_id: int, due_ms: int) -> None:
        await self._cql.execute("att_gc_delete", (day_of(due_ms), due_ms, attachment_id))
