"""The group store port: groups and their members, at most ``MAX_GROUP_MEMBERS``
(invariant 4). Backends: ``store_sqlite`` and ``store_cassandra``.

Every method may raise ``inbox.core.errors.Unavailable`` when the backing store cannot answer;
that error always means "nothing happened, a retry is safe".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inbox.core.models import Group, MembershipChange


class GroupStore(Protocol):
    """Groups and their members (invariant 4: at most ``MAX_GROUP_MEMBERS``, atomically).

    Contract: every membership change is one atomic compare-and-set on the group, so two
    concurrent changes never both apply against the same old member list: concurrent adds
    racing for the last seats can never make a group exceed the cap. Changes that would
    exceed it raise ``Conflict(code="group_full")`` and change nothing (all or nothing).
    ``member_ids`` keep join order; ids already in are ignored. A group whose last member
    leaves stays stored, empty (its history still names it); nobody can reach it again.

    Each group has a version (1 when created, +1 per change) and records its latest change
    (``GroupChange``) in the same atomic write as the change, so that a change whose
    announcement failed can be announced again later, exactly as it happened. Every change
    method returns it as ``MembershipChange.last`` (for a no-op: the one recorded before).
    """

    async def create(self, group: Group) -> None:
        """Store a new group (``member_ids`` deduplicated, owner first) at version 1,
        recording the ``created`` change; ``group_full`` when it has more than
        ``MAX_GROUP_MEMBERS``; a retry of the same create is a no-op."""
        ...

    async def get(self, group_id: int) -> Group | None:
        """The group, or None when unknown."""
        ...

    async def claim_create_key(self, owner_id: int, client_key: str, group_id: int) -> int:
        """Bind the owner's create key to ``group_id`` unless it is bound already (atomic:
        of concurrent claims exactly one wins); return the group id the key is bound to."""
        ...

    async def add_members(self, group_id: int, user_ids: Sequence[int]) -> MembershipChange:
        """Add the ids not yet in, in the given order; ``NotFound`` for an unknown group,
        ``Conflict(code="group_full")`` (nothing added) past the cap. The change's
        ``user_ids`` are the ids actually added."""
        ...

    async def remove_member(self, group_id: int, user_id: int) -> MembershipChange:
        """Remove one member; an owner leaving hands ownership to the longest-standing
        remaining member. ``NotFound`` for an unknown group; removing a non-member changes
        nothing (empty ``user_ids``)."""
        ...

    async def groups_of(self, user_id: int) -> list[int]:
        """Ids of the groups ``user_id`` is a member of, ascending."""
        ...
