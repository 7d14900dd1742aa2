"""The production MuteStore: one row per (user, conversation) in Cassandra."""

from __future__ import annotations

from typing import Final

from inbox.storage.cql_session import CqlSession

FOREVER_MS: Final = 2**63 - 1
"""Stored for "muted forever", so the row never needs a null column."""

MUTE_STATEMENTS: Final = {
    "set_mute": "INSERT INTO mutes (user_id, conversation_id, until_ms) VALUES (?, ?, ?)",
    "get_mute": "SELECT until_ms FROM mutes WHERE user_id = ? AND conversation_id = ?",
}


class CassandraMuteStore:
    """MuteStore over a ``CqlSession`` prepared with ``MUTE_STATEMENTS``.

    Unmuting overwrites ``until_ms`` with a past time instead of deleting the row: an upsert
    leaves no tombstone, and ``muted`` treats a past time as unmuted anyway.
    """

    def __init__(self, cql: CqlSession) -> None:
        self._cql = cql

    async def set_mute(self, user_id: int, conversation_id: str, until_ms: int | None) -> None:
        until = FOREVER_MS if until_ms is None else until_ms
        await self._cql.execute("set_mute", (user_id, conversation_id, until))

    async def muted(self, user_id: int, conversation_id: str, now_ms: int) -> bool:
        rows = await self._cql.execute("get_mute", (user_id, conversation_id))
        return bool(rows) and rows[0][0] is not None and rows[0][0] > now_ms
