"""Who hears about a user's presence: its contacts (docs/websocket.md: peers of direct chats
and members of shared groups)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

from inbox.conversations.views import takes_part_directly
from inbox.core.ids import parse_conversation_id
from inbox.core.models import Group

GROUP_LOOKUPS = 16  # group reads in flight for one contacts query


class Contacts(Protocol):
    """The users that receive a user's ``presence`` frames."""

    async def contacts_of(self, user_id: int) -> set[int]:
        """Peers of the user's direct chats and members of its groups, never the user itself.

        May raise ``inbox.core.errors.Unavailable``; presence then skips that notice.
        """
        ...


class StaticContacts:
    """``Contacts`` from a fixed symmetric relation (tests, and a stand-in when no store
    knows the relation)."""

    def __init__(self, pairs: Iterable[tuple[int, int]] = ()) -> None:
        self._contacts: dict[int, set[int]] = {}
        for a, b in pairs:
            self.link(a, b)

    def link(self, a: int, b: int) -> None:
        """Make ``a`` and ``b`` contacts of each other."""
        if a != b:
            self._contacts.setdefault(a, set()).add(b)
            self._contacts.setdefault(b, set()).add(a)

    async def contacts_of(self, user_id: int) -> set[int]:
        return set(self._contacts.get(user_id, ()))


class DirectChats(Protocol):
    """The user's conversations (``inbox.conversations.port.ConversationStore``)."""

    async def conversation_ids(self, user_id: int) -> list[str]:
        """The ids of the user's conversations with any activity (no unread counting: this
        runs on every presence notice)."""
        ...


class GroupMembers(Protocol):
    """Group membership (``inbox.groups.port.GroupStore``)."""

    async def groups_of(self, user_id: int) -> list[int]:
        """Ids of the groups the user is a member of."""
        ...

    async def get(self, group_id: int) -> Group | None:
        """The group, or None when unknown."""
        ...


class StoreContacts:
    """``Contacts`` read from the stores: peers of the user's direct conversations (those
    with any message) and the current members of its groups."""

    def __init__(self, chats: DirectChats, groups: GroupMembers) -> None:
        self._chats = chats
        self._groups = groups

    async def contacts_of(self, user_id: int) -> set[int]:
        out: set[int] = set()
        for cid in await self._chats.conversation_ids(user_id):
            if takes_part_directly(user_id, cid):  # never a chat between two others
                out.update(parse_conversation_id(cid).user_ids or ())
        gate = asyncio.Semaphore(GROUP_LOOKUPS)

        async def members(group_id: int) -> tuple[int, ...]:
            async with gate:
                group = await self._groups.get(group_id)
            return group.member_ids if group is not None else ()

        groups = await self._groups.groups_of(user_id)
        for member_ids in await asyncio.gather(*(members(gid) for gid in groups)):
            out.update(member_ids)
        out.discard(user_id)
        return out
