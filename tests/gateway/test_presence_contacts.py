"""Who hears a user's presence: direct-chat peers and fellow group members."""

from __future__ import annotations

from gateway.presence_contacts import StaticContacts, StoreContacts
from inbox.core.models import Group

ALICE, BOB, CAROL, DAVE, ERIN = 1, 2, 3, 4, 5


class MemoryChats:
    """Only the cheap id listing: contacts must never count unread messages."""

    def __init__(self, by_user: dict[int, list[str]]) -> None:
        self._by_user = by_user

    async def conversation_ids(self, user_id: int) -> list[str]:
        return list(self._by_user.get(user_id, []))


class MemoryGroups:
    def __init__(self, groups: list[Group]) -> None:
        self._groups = {g.group_id: g for g in groups}

    async def groups_of(self, user_id: int) -> list[int]:
        return sorted(gid for gid, g in self._groups.items() if user_id in g.member_ids)

    async def get(self, group_id: int) -> Group | None:
        return self._groups.get(group_id)


async def test_direct_peers_and_group_members_but_not_oneself() -> None:
    chats = MemoryChats({ALICE: [f"d:{ALICE}:{BOB}", f"d:{ALICE}:{ALICE}", "g:77"]})
    groups = MemoryGroups([Group(77, "team", CAROL, (CAROL, ALICE, DAVE), 0),
                           Group(78, "other", ERIN, (ERIN, BOB), 0)])
    contacts = StoreContacts(chats, groups)
    assert await contacts.contacts_of(ALICE) == {BOB, CAROL, DAVE}
    assert await contacts.contacts_of(DAVE) == {CAROL, ALICE}
    assert await contacts.contacts_of(ERIN) == {BOB}
    assert await contacts.contacts_of(99) == set()


async def test_a_direct_chat_of_two_others_makes_no_contacts() -> None:
    chats = MemoryChats({ERIN: [f"d:{ALICE}:{BOB}", f"d:{CAROL}:{ERIN}", "d:x", "d:5:4"]})
    contacts = StoreContacts(chats, MemoryGroups([]))
    assert await contacts.contacts_of(ERIN) == {CAROL}


async def test_static_contacts_are_symmetric() -> None:
    contacts = StaticContacts([(ALICE, BOB), (ALICE, ALICE)])
    contacts.link(BOB, CAROL)
    assert await contacts.contacts_of(ALICE) == {BOB}
    assert await contacts.contacts_of(BOB) == {ALICE, CAROL}
    assert await contacts.contacts_of(CAROL) == {BOB}
