"""GroupService and Participants over the embedded SQLite stores: permissions, validation,
``group_event`` entries in every inbox involved, and group sends to every member."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gateway.wire import entry_json
from idgen.snowflake import SnowflakeGenerator
from inbox.accounts.store_sqlite import SqliteAccountStore
from inbox.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unavailable
from inbox.core.models import AppendBatch, Caller, Entry, EntryKind, User
from inbox.core.participants import Participants
from inbox.groups.service import GroupService
from inbox.groups.store_sqlite import SqliteGroupStore
from inbox.messages.service import Appends, MessageService, SendRequest
from inbox.messages.store_sqlite import SqliteInboxStore
from inbox.storage.sqlite_db import SqliteDatabase
from tests.inbox.flaky_inbox import FlakyInbox
from tests.push.support import ManualClock


class RecordingListener:
    """Records every append the listeners are told about (live delivery, push)."""

    def __init__(self) -> None:
        self.batches: list[AppendBatch] = []

    async def on_appended(self, appends: Appends) -> None:
        self.batches += [batch for batch, _ in appends]


@dataclass
class World:
    groups: GroupService
    participants: Participants
    messages: MessageService
    inbox: SqliteInboxStore
    flaky: FlakyInbox
    listener: RecordingListener
    users: list[Caller]

    async def entries(self, caller: Caller) -> list[Entry]:
        return (await self.inbox.read(caller.user_id, 0, 1000)).entries


@pytest.fixture
async def world(db: SqliteDatabase, clock: ManualClock, ids: SnowflakeGenerator
                ) -> AsyncIterator[World]:
    accounts = SqliteAccountStore(db)
    inbox = SqliteInboxStore(db)
    store = SqliteGroupStore(db)
    listener = RecordingListener()
    flaky = FlakyInbox(inbox)
    messages = MessageService(flaky, accounts, ids.next_id, clock, [listener],
                              recipients=Participants(store))
    groups = GroupService(store, accounts, messages, ids.next_id, clock)
    users = []
    for n in range(105):
        user_id = ids.next_id()
        await accounts.create_user(User(user_id, f"user{n}", f"User {n}", "hash", 0))
        users.append(Caller(user_id, ids.next_id()))
    yield World(groups, Participants(store), messages, inbox, flaky, listener, users)


def _ids(callers: list[Caller]) -> list[int]:
    return [c.user_id for c in callers]


async def test_create_includes_the_creator_and_announces_to_every_member(world: World) -> None:
    alice, bob, carol = world.users[:3]
    group = await world.groups.create(alice, "  Trip  ", [bob.user_id, carol.user_id, bob.user_id])
    assert group.name == "Trip" and group.owner_id == alice.user_id
    assert group.member_ids == (alice.user_id, bob.user_id, carol.user_id)
    for member in (alice, bob, carol):
        [entry] = await world.entries(member)
        assert entry.kind is EntryKind.GROUP_EVENT
        assert entry.draft.conversation_id == f"g:{group.group_id}"
        assert entry.draft.sender_id == alice.user_id
        wire = entry_json(entry)
        assert wire["group"] == {
            "group_id": str(group.group_id), "name": "Trip", "owner_id": str(alice.user_id),
            "member_ids": [str(u) for u in group.member_ids], "event": "created",
            "user_ids": [str(u) for u in group.member_ids],
        }  # fmt: skip
        assert wire["msg_id"] != wire["group"]["group_id"]  # a fresh Snowflake
    assert len(world.listener.batches) == 1  # listeners (live, push) saw the event


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_create_refuses_bad_names(world: World, name: str) -> None:
    with pytest.raises(InvalidInput):
        await world.groups.create(world.users[0], name, [])


async def test_create_refuses_unknown_users_and_more_than_100(world: World) -> None:
    alice = world.users[0]
    with pytest.raises(NotFound):
        await world.groups.create(alice, "x", [world.users[1].user_id, 424242])
    with pytest.raises(Conflict) as full:
        await world.groups.create(alice, "x", _ids(world.users[1:101]))
    assert full.value.code == "group_full"
    assert await world.entries(alice) == []  # nothing was created, nothing announced
    group = await world.groups.create(alice, "x", _ids(world.users[1:100]))
    assert len(group.member_ids) == 100


async def test_get_is_for_members_only(world: World) -> None:
    alice, bob, eve = world.users[:3]
    group = await world.groups.create(alice, "g", [bob.user_id])
    assert await world.groups.get(bob, group.group_id) == group
    with pytest.raises(Forbidden):
        await world.groups.get(eve, group.group_id)
    with pytest.raises(NotFound):
        await world.groups.get(alice, 987654321)


async def test_any_member_adds_and_the_101st_is_refused(world: World) -> None:
    alice, bob, carol, eve = world.users[:4]
    group = await world.groups.create(alice, "g", [bob.user_id])
    with pytest.raises(Forbidden):
        await world.groups.add_members(eve, group.group_id, [eve.user_id])
    with pytest.raises(NotFound):
        await world.groups.add_members(bob, group.group_id, [carol.user_id, 31337])
    after = await world.groups.add_members(bob, group.group_id, [carol.user_id, alice.user_id])
    assert after.member_ids == (alice.user_id, bob.user_id, carol.user_id)
    [event] = [e for e in await world.entries(carol) if e.draft.group is not None]
    assert event.draft.group is not None
    assert event.draft.group["event"] == "members_added"
    assert event.draft.group["user_ids"] == [carol.user_id]
    assert event.draft.sender_id == bob.user_id
    before = len(await world.entries(alice))
    same = await world.groups.add_members(bob, group.group_id, [carol.user_id])
    assert same == after and len(await world.entries(alice)) == before  # no change, no event
    await world.groups.add_members(alice, group.group_id, _ids(world.users[4:100]))
    with pytest.raises(Conflict) as full:
        await world.groups.add_members(alice, group.group_id, _ids(world.users[100:102]))
    assert full.value.code == "group_full"
    assert len((await world.groups.get(alice, group.group_id)).member_ids) == 99  # unchanged
    last = await world.groups.add_members(alice, group.group_id, _ids(world.users[100:101]))
    assert len(last.member_ids) == 100


async def test_removal_rules_and_events(world: World) -> None:
    alice, bob, carol, dave = world.users[:4]
    group = await world.groups.create(alice, "g", _ids([bob, carol, dave]))
    with pytest.raises(Forbidden):
        await world.groups.remove_member(bob, group.group_id, carol.user_id)
    await world.groups.remove_member(alice, group.group_id, carol.user_id)  # owner removes
    await world.groups.remove_member(alice, group.group_id, carol.user_id)  # repeat: no-op
    removed = [e for e in await world.entries(carol) if e.draft.group is not None]
    assert [e.draft.group["event"] for e in removed if e.draft.group] == [
        "created", "member_removed"]  # the removed member hears about it, once
    with pytest.raises(Forbidden):
        await world.groups.get(carol, group.group_id)
    await world.groups.remove_member(bob, group.group_id, bob.user_id)  # a member leaves
    await world.groups.remove_member(alice, group.group_id, alice.user_id)  # the owner leaves
    after = await world.groups.get(dave, group.group_id)
    assert after.owner_id == dave.user_id and after.member_ids == (dave.user_id,)
    [last] = (await world.entries(dave))[-1:]
    assert last.draft.group is not None
    assert last.draft.group["owner_id"] == dave.user_id
    assert last.draft.group["user_ids"] == [alice.user_id]


async def test_group_send_reaches_every_member_and_only_members(world: World) -> None:
    alice, bob, carol, eve = world.users[:4]
    group = await world.groups.create(alice, "g", _ids([bob, carol]))
    receipt, replayed = await world.messages.send(
        bob, SendRequest("hello all", "c-1", to_group=group.group_id))
    assert not replayed and receipt.conversation_id == f"g:{group.group_id}"
    for member in (alice, bob, carol):
        assert (await world.entries(member))[-1].draft.body == "hello all"
    assert await world.entries(eve) == []
    with pytest.raises(Forbidden):
        await world.messages.send(eve, SendRequest("hi", "c-2", to_group=group.group_id))
    with pytest.raises(NotFound):
        await world.messages.send(eve, SendRequest("hi", "c-3", to_group=5555))


async def test_participants_for_direct_and_group_conversations(world: World) -> None:
    alice, bob, eve = world.users[:3]
    group = await world.groups.create(alice, "g", [bob.user_id])
    ref = await world.participants.require(bob, f"g:{group.group_id}")
    assert await world.participants.members(ref) == [alice.user_id, bob.user_id]
    with pytest.raises(Forbidden):
        await world.participants.require(eve, f"g:{group.group_id}")
    with pytest.raises(NotFound):
        await world.participants.require(alice, "g:12345")
    low, high = sorted((alice.user_id, bob.user_id))
    direct = await world.participants.require(alice, f"d:{low}:{high}")
    assert await world.participants.members(direct) == [low, high]
    with pytest.raises(Forbidden):
        await world.participants.require(eve, f"d:{low}:{high}")
    with pytest.raises(NotFound):
        await world.participants.require(alice, f"d:{high}:{low}")
    with pytest.raises(InvalidInput):
        await world.participants.require(alice, "x:1")
    notes = await world.participants.require(alice, f"d:{alice.user_id}:{alice.user_id}")
    assert await world.participants.members(notes) == [alice.user_id]


def _events(entries: list[Entry]) -> list[tuple[str, list[int]]]:
    return [(e.draft.group["event"], e.draft.group["user_ids"])
            for e in entries if e.draft.group is not None]


async def test_every_change_is_announced_once_also_a_member_leaving_and_rejoining(
    world: World,
) -> None:
    alice, bob = world.users[:2]
    group = await world.groups.create(alice, "g", [])
    for _ in range(2):
        await world.groups.add_members(alice, group.group_id, [bob.user_id])
        await world.groups.add_members(alice, group.group_id, [bob.user_id])  # redundant
        await world.groups.remove_member(bob, group.group_id, bob.user_id)
        await world.groups.remove_member(alice, group.group_id, bob.user_id)  # redundant
    assert _events(await world.entries(bob)) == [
        ("members_added", [bob.user_id]), ("member_removed", [bob.user_id])] * 2
    assert len(world.listener.batches) == 5  # listeners hear each event once


async def test_a_create_whose_event_failed_had_no_visible_effect(world: World) -> None:
    alice, bob = world.users[:2]
    world.flaky.fail_next(EntryKind.GROUP_EVENT)
    with pytest.raises(Unavailable):
        await world.groups.create(alice, "g", [bob.user_id])
    assert await world.entries(alice) == [] and await world.entries(bob) == []
    group = await world.groups.create(alice, "g", [bob.user_id])  # a retry: a new group
    assert _events(await world.entries(bob)) == [("created", [alice.user_id, bob.user_id])]
    assert (await world.entries(bob))[0].draft.conversation_id == f"g:{group.group_id}"


async def test_a_keyed_create_answered_503_is_finished_by_its_retry(world: World) -> None:
    alice, bob, eve = world.users[0], world.users[1], world.users[4]
    world.flaky.fail_next(EntryKind.GROUP_EVENT)
    with pytest.raises(Unavailable):
        await world.groups.create_once(alice, "g", [bob.user_id], "create-1")
    assert await world.entries(bob) == []  # the group is stored, nobody told yet
    group, replayed = await world.groups.create_once(alice, "g", [bob.user_id], "create-1")
    assert replayed  # the first attempt's group, announced now
    assert _events(await world.entries(bob)) == [("created", [alice.user_id, bob.user_id])]
    again, replayed = await world.groups.create_once(alice, "g", [bob.user_id], "create-1")
    assert replayed and again == group
    assert len(await world.entries(bob)) == 1  # announced once
    other, replayed = await world.groups.create_once(alice, "g", [bob.user_id], "create-2")
    assert not replayed and other.group_id != group.group_id
    mine, _ = await world.groups.create_once(eve, "g", [], "create-1")  # keys are per user
    assert mine.group_id not in (group.group_id, other.group_id)
    with pytest.raises(InvalidInput):
        await world.groups.create_once(alice, "g", [], "k" * 129)


async def test_a_leave_answered_503_is_announced_by_its_retry(world: World) -> None:
    alice, bob, carol, eve = world.users[:4]
    group = await world.groups.create(alice, "g", _ids([bob, carol]))
    gid = group.group_id
    world.flaky.fail_next(EntryKind.GROUP_EVENT)
    with pytest.raises(Unavailable):
        await world.groups.remove_member(bob, gid, bob.user_id)  # left, but nobody was told
    await world.groups.remove_member(bob, gid, bob.user_id)  # the retry, by a non-member now
    await world.groups.remove_member(bob, gid, bob.user_id)  # and a repeat: writes nothing
    left = ("member_removed", [bob.user_id])
    for who in (alice, bob, carol):
        assert _events(await world.entries(who))[1:] == [left]
    with pytest.raises(Forbidden):  # never a member
        await world.groups.remove_member(eve, gid, eve.user_id)
    await world.groups.remove_member(carol, gid, carol.user_id)
    with pytest.raises(Forbidden):  # bob's leave is no longer the latest change
        await world.groups.remove_member(bob, gid, bob.user_id)
    with pytest.raises(NotFound):
        await world.groups.remove_member(bob, 987654321, bob.user_id)
