"""Cassandra ``GroupStore``: one ``groups`` row per group, changed only by compare-and-set.

How the contract holds without a transaction:
- the cap (invariant 4): ``member_ids`` is a ``frozen<list<bigint>>`` (one cell: rewriting it
  leaves no tombstone, unlike a non-frozen collection) next to a ``version`` counter. A change
  reads the row, applies ``inbox.groups.membership`` and writes ``... IF version = <read>``
  (a Paxos LWT). Of two changes that read the same version only one applies; the loser reads
  again and re-decides against the new member list, so racing adds can never make 101.
- the latest change (``last_event``, ``last_user_ids``) is written by the same
  compare-and-set, so it always describes the current ``version`` (rows written before
  these columns existed have none recorded).
- ``groups_by_user`` (for ``groups_of``) is an index written with ``USING TIMESTAMP
  <group version>``: the later membership change wins whatever order index writes land in,
  and nothing else writes that table, so these synthetic timestamps meet no real ones. An
  add writes its index rows *before* its compare-and-set, a removal deletes *after*, so the
  index is always a superset of the real memberships (even if a process dies in between).
  ``groups_of`` checks each candidate against its group row and drops stale index rows.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from inbox.core.errors import NotFound, Unavailable
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
from inbox.storage.cql_session import CqlSession

_COLS: Final = ("group_id, name, owner_id, member_ids, created_at_ms, version, last_event, "
                "last_user_ids")
GROUP_STATEMENTS: Final = {
    "insert_group": f"INSERT INTO groups ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "IF NOT EXISTS",
    "get_group": f"SELECT {_COLS} FROM groups WHERE group_id = ?",
    "cas_group": "UPDATE groups SET owner_id = ?, member_ids = ?, version = ?, "
    "last_event = ?, last_user_ids = ? WHERE group_id = ? IF version = ?",
    "index_member": "INSERT INTO groups_by_user (user_id, group_id) VALUES (?, ?) "
    "USING TIMESTAMP ?",
    "unindex_member": "DELETE FROM groups_by_user USING TIMESTAMP ? "
    "WHERE user_id = ? AND group_id = ?",
    "groups_of": "SELECT group_id FROM groups_by_user WHERE user_id = ?",
    "claim_create_key": "INSERT INTO group_create_keys (owner_id, client_key, group_id) "
    "VALUES (?, ?, ?) IF NOT EXISTS",
    "create_key": "SELECT group_id FROM group_create_keys WHERE owner_id = ? AND client_key = ?",
}
MAX_ATTEMPTS: Final = 64
"""Compare-and-set rounds before a change gives up with ``Unavailable`` (retry is safe)."""


@dataclass(frozen=True, slots=True)
class _Row:
    """A group as stored: its members, its version and its latest recorded change."""

    group: Group
    version: int
    last: GroupChange | None


def _applied(rows: list[tuple[Any, ...]]) -> bool:
    return bool(rows and rows[0][0])


def _backoff_s(attempt: int) -> float:
    """Jittered, capped exponential backoff between lost compare-and-set rounds."""
    return random.uniform(0, min(0.002 * 2**attempt, 0.05))  # noqa: S311 (jitter, not crypto)


class CassandraGroupStore:
    """``inbox.groups.port.GroupStore`` on Cassandra (see the module docstring)."""

    def __init__(self, cql: CqlSession) -> None:
        """Use a ``CqlSession`` prepared with ``GROUP_STATEMENTS``."""
        self._cql = cql

    async def create(self, group: Group) -> None:
        """Store a new group (``IF NOT EXISTS``: a retry of the same create is a no-op)."""
        members = list(dict.fromkeys(group.member_ids))
        if len(members) > MAX_GROUP_MEMBERS:
            raise group_full(group.group_id, len(members))
        await self._index(group.group_id, members, FIRST_VERSION)
        first = created(group)
        await self._cql.execute("insert_group", (
            group.group_id, group.name, group.owner_id, members, group.created_at_ms,
            first.version, first.event, list(first.user_ids),
        ))  # fmt: skip

    async def get(self, group_id: int) -> Group | None:
        """The group, or None when unknown."""
        found = await self._load(group_id)
        return found.group if found is not None else None

    async def claim_create_key(self, owner_id: int, client_key: str, group_id: int) -> int:
        """Bind the key to ``group_id`` with a lightweight transaction unless bound; the id
        it is bound to (a lost claim reads the winner's, committed by then, at quorum)."""
        rows = await self._cql.execute("claim_create_key", (owner_id, client_key, group_id))
        if _applied(rows):
            return group_id
        bound = await self._cql.execute("create_key", (owner_id, client_key))
        return int(bound[0][0])

    async def add_members(self, group_id: int, user_ids: Sequence[int]) -> MembershipChange:
        """Add the ids not yet in (all or nothing under the cap), by compare-and-set."""
        return await self._change(group_id, GroupEvent.MEMBERS_ADDED,
                                  lambda g: with_members_added(g, user_ids))

    async def remove_member(self, group_id: int, user_id: int) -> MembershipChange:
        """Remove one member (ownership passes on when the owner leaves), by compare-and-set."""
        return await self._change(group_id, GroupEvent.MEMBER_REMOVED,
                                  lambda g: with_member_removed(g, user_id))

    async def groups_of(self, user_id: int) -> list[int]:
        """Ids of the user's groups, ascending; index rows the group disowns are dropped."""
        rows = await self._cql.execute("groups_of", (user_id,))
        candidates = [int(row[0]) for row in rows]
        loaded = await asyncio.gather(*(self._load(gid) for gid in candidates))
        mine: list[int] = []
        stale: list[tuple[str, Sequence[Any]]] = []
        for gid, found in zip(candidates, loaded, strict=True):
            if found is not None and user_id in found.group.member_ids:
                mine.append(gid)
            elif found is not None:
                # At the group's current version: a later add (a higher version) still wins.
                stale.append(("unindex_member", (found.version, user_id, gid)))
        if stale:
            await self._cql.execute_all(stale)
        return sorted(mine)

    async def _change(self, group_id: int, event: GroupEvent,
                      rule: Callable[[Group], MembershipChange]) -> MembershipChange:
        """Read, decide, compare-and-set; re-decide from a fresh read after a lost race."""
        for attempt in range(MAX_ATTEMPTS):
            found = await self._load(group_id)
            if found is None:
                raise NotFound(f"no group {group_id}")
            version = found.version
            # group_full here means nothing was written
            change = recorded(rule(found.group), event, version + 1, found.last)
            if not change.user_ids or change.last is None:
                return change
            after = change.group
            added = [uid for uid in change.user_ids if uid in after.member_ids]
            await self._index(group_id, added, version + 1)
            rows = await self._cql.execute("cas_group", (
                after.owner_id, list(after.member_ids), version + 1, change.last.event,
                list(change.last.user_ids), group_id, version,
            ))  # fmt: skip
            if _applied(rows):
                removed = [uid for uid in change.user_ids if uid not in after.member_ids]
                await self._cql.execute_all([
                    ("unindex_member", (version + 1, uid, group_id)) for uid in removed
                ])  # fmt: skip
                return change
            await asyncio.sleep(_backoff_s(attempt))
        raise Unavailable(f"group {group_id} is changing too fast; retry")

    async def _index(self, group_id: int, user_ids: Sequence[int], version: int) -> None:
        await self._cql.execute_all([
            ("index_member", (uid, group_id, version)) for uid in user_ids
        ])  # fmt: skip

    async def _load(self, group_id: int) -> _Row | None:
        rows = await self._cql.execute("get_group", (group_id,))
        if not rows:
            return None
        gid, name, owner, members, created_at, version, event, event_ids = rows[0]
        last = None
        if event is not None:
            last = GroupChange(int(version), event, tuple(event_ids or ()))
        return _Row(Group(gid, name, owner, tuple(members or ()), created_at), int(version),
                    last)
