"""The embedded GroupStore, in the SQLite file of ``SqliteDatabase``.

A group is one ``groups`` row whose ``member_ids`` is a JSON array in join order, plus one
``group_members`` row per member for ``groups_of`` and one ``group_changes`` row holding the
group's version and its latest membership change (what ``GroupService`` announces again
when an announcement was lost; a group stored before that table existed has no row and
counts as version 1 with nothing recorded). Every change reads, applies the rules of
``inbox.groups.membership`` and writes back inside one ``BEGIN IMMEDIATE`` transaction on the
database's single thread, so changes are serialised and the cap is atomic by construction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from inbox.core.errors import NotFound
from inbox.core.models import MAX_GROUP_MEMBERS, Group, GroupChange, MembershipChange
from inbox.groups.membership import (
    FIRST_VERSION,
    GroupEvent,
    created,
    group_full,
    recorded,
    with_member_removed,
    with_members_added,
)
from inbox.storage.sqlite_db import SqliteDatabase

_COLUMNS = "group_id, name, owner_id, member_ids, created_at_ms"


def _load(conn: sqlite3.Connection, group_id: int) -> Group | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM groups WHERE group_id = ?",  # noqa: S608
                       (group_id,)).fetchone()
    if row is None:
        return None
    return Group(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])


def _last_change(conn: sqlite3.Connection, group_id: int) -> GroupChange | None:
    row = conn.execute("SELECT version, event, user_ids FROM group_changes WHERE group_id = ?",
                       (group_id,)).fetchone()
    return GroupChange(row[0], row[1], tuple(json.loads(row[2]))) if row else None


def _record(conn: sqlite3.Connection, group_id: int, change: GroupChange) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO group_changes (group_id, version, event, user_ids)"
        " VALUES (?, ?, ?, ?)",
        (group_id, change.version, change.event, json.dumps(list(change.user_ids))),
    )


def _save(conn: sqlite3.Connection, group: Group, change: MembershipChange | None) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO groups ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
        (group.group_id, group.name, group.owner_id, json.dumps(list(group.member_ids)),
         group.created_at_ms),
    )
    joined = group.member_ids if change is None else change.user_ids
    conn.executemany(
        "INSERT OR IGNORE INTO group_members (user_id, group_id) VALUES (?, ?)",
        [(uid, group.group_id) for uid in joined if uid in group.member_ids],
    )
    if change is not None:
        conn.executemany(
            "DELETE FROM group_members WHERE user_id = ? AND group_id = ?",
            [(uid, group.group_id) for uid in change.user_ids if uid not in group.member_ids],
        )


class SqliteGroupStore:
    """GroupStore over ``SqliteDatabase`` (see ``inbox.groups.port.GroupStore``)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create(self, group: Group) -> None:
        """Store a new group at version 1; a retry of an existing id is a no-op."""
        if len(set(group.member_ids)) > MAX_GROUP_MEMBERS:
            raise group_full(group.group_id, len(set(group.member_ids)))

        def insert(conn: sqlite3.Connection) -> None:
            if _load(conn, group.group_id) is None:
                _save(conn, group, None)
                _record(conn, group.group_id, created(group))

        await self._db.transaction(insert)

    async def get(self, group_id: int) -> Group | None:
        """The group, or None when unknown."""
        return await self._db.run(lambda conn: _load(conn, group_id))

    async def claim_create_key(self, owner_id: int, client_key: str, group_id: int) -> int:
        """Bind the key to ``group_id`` unless bound; the id it is bound to."""

        def claim(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT OR IGNORE INTO group_create_keys (owner_id, client_key, group_id)"
                " VALUES (?, ?, ?)", (owner_id, client_key, group_id),
            ).close()
            row = conn.execute(
                "SELECT group_id FROM group_create_keys WHERE owner_id = ? AND client_key = ?",
                (owner_id, client_key),
            ).fetchone()
            return int(row[0])

        return await self._db.transaction(claim)

    async def add_members(self, group_id: int, user_ids: Sequence[int]) -> MembershipChange:
        """Add the ids not yet in (all or nothing under the cap)."""
        return await self._change(group_id, GroupEvent.MEMBERS_ADDED,
                                  lambda g: with_members_added(g, user_ids))

    async def remove_member(self, group_id: int, user_id: int) -> MembershipChange:
        """Remove one member (ownership passes on when the owner leaves)."""
        return await self._change(group_id, GroupEvent.MEMBER_REMOVED,
                                  lambda g: with_member_removed(g, user_id))

    async def _change(self, group_id: int, event: GroupEvent,
                      rule: Callable[[Group], MembershipChange]) -> MembershipChange:
        def apply(conn: sqlite3.Connection) -> MembershipChange:
            group = _load(conn, group_id)
            if group is None:
                raise NotFound(f"no group {group_id}")
            before = _last_change(conn, group_id)
            version = before.version if before is not None else FIRST_VERSION
            change = recorded(rule(group), event, version + 1, before)  # group_full: no write
            if change.user_ids and change.last is not None:
                _save(conn, change.group, change)
                _record(conn, group_id, change.last)
            return change

        return await self._db.transaction(apply)

    async def groups_of(self, user_id: int) -> list[int]:
        """Ids of the user's groups, ascending."""
        rows = await self._db.run(lambda conn: conn.execute(
            "SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id",
            (user_id,),
        ).fetchall())  # fmt: skip
        return [int(row[0]) for row in rows]
