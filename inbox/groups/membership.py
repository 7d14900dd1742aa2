"""Membership rules of a group, as pure functions over ``Group`` values (no I/O).

Every ``GroupStore`` backend reads a group, applies one of these, and writes the result back
atomically (one SQLite transaction, or a Cassandra compare-and-set on the group's version),
so the rules live in one place and the cap (invariant 4) is decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum

from inbox.core.errors import Conflict
from inbox.core.models import MAX_GROUP_MEMBERS, Group, GroupChange, MembershipChange

FIRST_VERSION = 1
"""A group's version when created; every membership change adds one."""


class GroupEvent(StrEnum):
    """What a membership change did (the ``event`` of its ``group_event`` entry)."""

    CREATED = "created"
    MEMBERS_ADDED = "members_added"
    MEMBER_REMOVED = "member_removed"


def recorded(change: MembershipChange, event: GroupEvent, version: int,
             before: GroupChange | None) -> MembershipChange:
    """``change`` with the group's latest recorded change: itself at ``version`` when it
    changed something, else ``before`` (what the store had recorded)."""
    if not change.user_ids:
        return replace(change, last=before)
    return replace(change, last=GroupChange(version, event.value, change.user_ids))


def created(group: Group) -> GroupChange:
    """The change a new group records: everyone joined at the first version."""
    return GroupChange(FIRST_VERSION, GroupEvent.CREATED.value,
                       tuple(dict.fromkeys(group.member_ids)))


def group_full(group_id: int | None, count: int) -> Conflict:
    """The 409 for a group that would hold ``count`` > ``MAX_GROUP_MEMBERS`` members."""
    where = f"group {group_id}" if group_id is not None else "a group"
    return Conflict(
        f"{where} would have {count} members; the limit is {MAX_GROUP_MEMBERS}",
        code="group_full",
    )


def new_group(group_id: int, name: str, owner_id: int, member_ids: Sequence[int],
              created_at_ms: int) -> Group:
    """A group with its owner first and the other members deduplicated in the given order;
    ``group_full`` past the cap."""
    members = tuple(dict.fromkeys([owner_id, *member_ids]))
    if len(members) > MAX_GROUP_MEMBERS:
        raise group_full(None, len(members))
    return Group(group_id, name, owner_id, members, created_at_ms)


def with_members_added(group: Group, user_ids: Sequence[int]) -> MembershipChange:
    """The group with the ids not yet in appended (join order), all or nothing."""
    present = set(group.member_ids)
    added = tuple(uid for uid in dict.fromkeys(user_ids) if uid not in present)
    count = len(group.member_ids) + len(added)
    if count > MAX_GROUP_MEMBERS:
        raise group_full(group.group_id, count)
    if not added:
        return MembershipChange(group, ())
    return MembershipChange(replace(group, member_ids=group.member_ids + added), added)


def with_member_removed(group: Group, user_id: int) -> MembershipChange:
    """The group without ``user_id``. An owner leaving hands ownership to the longest-standing
    member left (the first in join order); the last member leaving leaves the group empty."""
    if user_id not in group.member_ids:
        return MembershipChange(group, ())
    members = tuple(uid for uid in group.member_ids if uid != user_id)
    owner = group.owner_id
    if owner == user_id and members:
        owner = members[0]
    return MembershipChange(replace(group, owner_id=owner, member_ids=members), (user_id,))
