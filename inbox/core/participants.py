"""Who takes part in a conversation (invariant 5: only participants read or write it).

``Participants`` is the one check every conversation endpoint and frame handler uses: direct
chats are decided by the id itself, groups by their current member list.
"""

from __future__ import annotations

from typing import Protocol

from inbox.core.errors import Forbidden, NotFound
from inbox.core.ids import ConversationRef, group_conversation_id, parse_conversation_id
from inbox.core.models import Caller, Group


class GroupLookup(Protocol):
    """Where groups are found (``inbox.groups.port.GroupStore``)."""

    async def get(self, group_id: int) -> Group | None:
        """The group, or None when unknown."""
        ...


def check_direct_participant(caller: Caller, ref: ConversationRef) -> None:
    """Forbidden unless the caller is one of the direct chat's two users."""
    assert ref.user_ids is not None  # noqa: S101 (a direct ref)
    if caller.user_id not in ref.user_ids:
        raise Forbidden(f"not a participant of {ref.id}")


class Participants:
    """Resolves conversation ids to their participants and refuses outsiders."""

    def __init__(self, groups: GroupLookup) -> None:
        self._groups = groups

    async def require(self, caller: Caller, conversation_id: str) -> ConversationRef:
        """Parse the id and check the caller takes part: InvalidInput (422) when malformed,
        NotFound (404) for a reversed direct id or an unknown group, Forbidden (403) when the
        caller is not a participant."""
        ref = parse_conversation_id(conversation_id)
        if ref.group_id is None:
            check_direct_participant(caller, ref)
            return ref
        group = await self._group(ref.group_id)
        if caller.user_id not in group.member_ids:
            raise Forbidden(f"not a member of group {ref.group_id}")
        return ref

    async def members(self, ref: ConversationRef) -> list[int]:
        """The user ids taking part: both users of a direct chat (one for notes to self), or
        the group's current members in join order; NotFound for an unknown group."""
        if ref.group_id is None:
            assert ref.user_ids is not None  # noqa: S101 (a direct ref)
            return list(dict.fromkeys(ref.user_ids))
        return list((await self._group(ref.group_id)).member_ids)

    async def group_audience(self, caller: Caller, group_id: int) -> tuple[str, list[int]]:
        """Who a group send goes to (``MessageService``'s ``Recipients``): the group's
        conversation id and current members; NotFound for an unknown group, Forbidden for a
        caller who is not a member."""
        group = await self._group(group_id)
        if caller.user_id not in group.member_ids:
            raise Forbidden(f"not a member of group {group_id}")
        return group_conversation_id(group_id), list(group.member_ids)

    async def _group(self, group_id: int) -> Group:
        group = await self._groups.get(group_id)
        if group is None:
            raise NotFound(f"no group {group_id}")
        return group
