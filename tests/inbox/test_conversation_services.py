"""Reads, deletes, the conversation list and history over the embedded SQLite stores, with a
hand-driven clock (the 24 h rule), plus the pure rules beside them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from idgen.snowflake import SnowflakeGenerator
from inbox.accounts.store_sqlite import SqliteAccountStore
from inbox.conversations.index import ConversationIndex, activity_of, joined_users, left_users
from inbox.conversations.reads import ReadService, read_batch
from inbox.conversations.store_sqlite import SqliteConversationStore
from inbox.conversations.views import ConversationViews, check_history_limit, current_states
from inbox.core.errors import Forbidden, InvalidInput, NotFound, Unavailable
from inbox.core.ids import ConversationRef, direct_id
from inbox.core.models import (
    AppendBatch,
    Appended,
    Caller,
    ConversationState,
    Entry,
    EntryDraft,
    EntryKind,
    SendReceipt,
    User,
)
from inbox.core.participants import Participants
from inbox.groups.service import GroupService
from inbox.groups.store_sqlite import SqliteGroupStore
from inbox.messages.deletes import DeleteService, Scope, parse_scope
from inbox.messages.service import MessageService, SendRequest
from inbox.messages.store_sqlite import SqliteInboxStore
from inbox.storage.sqlite_db import SqliteDatabase
from tests.inbox.flaky_inbox import FlakyInbox
from tests.push.support import ManualClock

DAY_S = 24 * 3600
_keys = itertools.count()


@dataclass
class World:
    db: SqliteDatabase
    clock: ManualClock
    inbox: SqliteInboxStore
    flaky: FlakyInbox
    conversations: SqliteConversationStore
    messages: MessageService
    groups: GroupService
    reads: ReadService
    deletes: DeleteService
    views: ConversationViews
    users: list[Caller]

    async def send(self, sender: Caller, to: Caller, body: str = "hi") -> int:
        receipt, _ = await self.messages.send(
            sender, SendRequest(body, f"k{next(_keys)}", to_user=to.user_id)
        )
        return receipt.msg_id

    async def send_group(self, sender: Caller, group_id: int, body: str = "hi") -> int:
        receipt, _ = await self.messages.send(
            sender, SendRequest(body, f"k{next(_keys)}", to_group=group_id)
        )
        return receipt.msg_id

    async def group_events(self, caller: Caller) -> list[tuple[str, list[int]]]:
        """(event, user_ids) of the caller's ``group_event`` entries, in inbox order."""
        out = []
        for entry in await self.entries(caller, EntryKind.GROUP_EVENT):
            assert entry.draft.group is not None
            out.append((entry.draft.group["event"], entry.draft.group["user_ids"]))
        return out

    async def entries(self, caller: Caller, kind: EntryKind) -> list[Entry]:
        page = await self.inbox.read(caller.user_id, 0, 1000)
        return [e for e in page.entries if e.kind is kind]

    async def unread(self, caller: Caller) -> dict[str, int]:
        return {s.conversation_id: s.unread for s in await self.views.summaries(caller)}


@pytest.fixture
async def world(db: SqliteDatabase, clock: ManualClock, ids: SnowflakeGenerator
                ) -> AsyncIterator[World]:
    accounts, inbox = SqliteAccountStore(db), SqliteInboxStore(db)
    group_store, conversations = SqliteGroupStore(db), SqliteConversationStore(db)
    participants = Participants(group_store)
    flaky = FlakyInbox(inbox)  # the services write through it; tests read the real store
    messages = MessageService(flaky, accounts, ids.next_id, clock, recipients=participants,
                              steps=[ConversationIndex(conversations, participants)])
    groups = GroupService(group_store, accounts, messages, ids.next_id, clock)
    users = []
    for name in ("alice", "bob", "carol", "dave"):
        user = User(ids.next_id(), name, name.title(), "hash", clock.now_ms())
        await accounts.create_user(user)
        users.append(Caller(user.user_id, ids.next_id()))
    yield World(
        db, clock, inbox, flaky, conversations, messages, groups,
        ReadService(conversations, participants, messages, clock),
        DeleteService(conversations, participants, messages, clock),
        ConversationViews(conversations, flaky, accounts, group_store, participants),
        users,
    )  # fmt: skip


# ---- pure rules -------------------------------------------------------------------------


def test_activity_is_messages_and_group_events_only() -> None:
    draft = EntryDraft(EntryKind.MESSAGE, 50, "d:1:2", 1, 11, 0, body="x")
    fresh = Appended(receipt=None, positions={1: 50, 2: 50})
    activity = activity_of(AppendBatch(draft, (1, 2, 1)), fresh)
    assert activity is not None and (activity.msg_id, activity.user_ids) == (50, (1, 2))
    read = EntryDraft(EntryKind.READ, 50, "d:1:2", 1, 11, 0, up_to_msg_id=50)
    assert activity_of(AppendBatch(read, (1, 2)), fresh) is None
    # A replayed send's draft has an unused id: the receipt names the stored message, and the
    # original conversation's participants are indexed, never the new request's audience.
    replay = Appended(receipt=SendReceipt(40, 41, "d:1:2", 0), replayed=True)
    activity = activity_of(AppendBatch(draft, (1, 2)), replay, [1, 2])
    assert activity is not None and activity.msg_id == 40 and activity.joined == ()
    elsewhere = EntryDraft(EntryKind.MESSAGE, 60, "d:1:9", 1, 11, 0, body="x")
    activity = activity_of(AppendBatch(elsewhere, (1, 9)), replay, [1, 2])
    assert activity is not None
    assert (activity.conversation_id, activity.msg_id, activity.user_ids) == ("d:1:2", 40, (1, 2))


def test_group_events_that_add_members_set_their_join_point() -> None:
    def event(name: str, user_ids: list[int | str]) -> EntryDraft:
        group = {"group_id": 9, "event": name, "user_ids": user_ids, "member_ids": [1, 2, 3]}
        return EntryDraft(EntryKind.GROUP_EVENT, 70, "g:9", 1, 11, 0, group=group)

    assert joined_users(event("created", [1, 2, 3]), (1, 2, 3)) == (1, 2, 3)
    assert joined_users(event("members_added", [3]), (1, 2, 3)) == (3,)
    assert joined_users(event("members_added", ["3"]), (1, 2, 3)) == (3,)  # wire form too
    assert joined_users(event("member_removed", [3]), (1, 2, 3)) == ()
    message = EntryDraft(EntryKind.MESSAGE, 70, "g:9", 1, 11, 0, body="x")
    assert joined_users(message, (1, 2)) == ()
    assert left_users(event("member_removed", [3, "4"])) == (3, 4)
    assert left_users(event("members_added", [3])) == () and left_users(message) == ()


def test_read_entries_go_to_the_reader_and_a_direct_peer_only() -> None:
    reader = Caller(1, 11)
    direct = read_batch(reader, ConversationRef("d:1:2", user_ids=(1, 2)), 77, 5)
    assert direct.user_ids == (1, 2)
    assert (direct.draft.kind, direct.draft.msg_id, direct.draft.up_to_msg_id) == (
        EntryKind.READ, 77, 77)  # fmt: skip
    assert (direct.draft.sender_id, direct.draft.sender_device_id) == (1, 11)
    notes = read_batch(reader, ConversationRef("d:1:1", user_ids=(1, 1)), 77, 5)
    assert notes.user_ids == (1,)
    group = read_batch(reader, ConversationRef("g:9", group_id=9), 77, 5)
    assert group.user_ids == (1,)


def test_input_rules() -> None:
    assert parse_scope("me") is Scope.ME and parse_scope("everyone") is Scope.EVERYONE
    with pytest.raises(InvalidInput):
        parse_scope("all")
    assert check_history_limit(1) == 1 and check_history_limit(200) == 200
    for bad in (0, 201, -1):
        with pytest.raises(InvalidInput):
            check_history_limit(bad)
    states = [ConversationState("g:1", 9, 0, 1), ConversationState("d:1:2", 8, 0, 2),
              ConversationState("g:2", 7, 0, 3)]  # fmt: skip
    assert [s.conversation_id for s in current_states(1, states, [2])] == ["d:1:2", "g:2"]
    # Direct chats between two others never count, whatever the index holds.
    assert [s.conversation_id for s in current_states(3, states, [2])] == ["g:2"]


# ---- reads ------------------------------------------------------------------------------


async def test_read_moves_the_marker_and_tells_other_devices_and_the_peer(world: World) -> None:
    alice, bob, carol, _ = world.users
    m1 = await world.send(alice, bob)
    m2 = await world.send(alice, bob)
    cid = direct_id(alice.user_id, bob.user_id)
    assert await world.unread(bob) == {cid: 2}
    assert await world.reads.mark_read(bob, cid, m2) is True
    assert await world.unread(bob) == {cid: 0}
    for who in (alice, bob):
        reads = await world.entries(who, EntryKind.READ)
        assert [(e.draft.up_to_msg_id, e.draft.sender_id) for e in reads] == [(m2, bob.user_id)]
    assert await world.entries(carol, EntryKind.READ) == []
    # Stale and repeated reads: accepted, nothing written, nothing moved back.
    assert await world.reads.mark_read(bob, cid, m1) is False
    assert await world.reads.mark_read(bob, cid, m2) is False
    assert len(await world.entries(alice, EntryKind.READ)) == 1
    assert await world.unread(bob) == {cid: 0}


async def test_read_checks_participant_and_message(world: World) -> None:
    alice, bob, carol, _ = world.users
    m1 = await world.send(alice, bob)
    other = await world.send(alice, carol)
    cid = direct_id(alice.user_id, bob.user_id)
    with pytest.raises(Forbidden):
        await world.reads.mark_read(carol, cid, m1)
    with pytest.raises(NotFound):  # a message of another conversation
        await world.reads.mark_read(bob, cid, other)
    with pytest.raises(NotFound):
        await world.reads.mark_read(bob, cid, m1 + 12345)
    with pytest.raises(InvalidInput):
        await world.reads.mark_read(bob, "x:1", m1)
    assert await world.entries(bob, EntryKind.READ) == []


# ---- deletes ----------------------------------------------------------------------------


async def test_delete_for_everyone_within_24_hours_only_by_the_sender(world: World) -> None:
    alice, bob, _, _ = world.users
    early = await world.send(alice, bob, "early")
    late = await world.send(alice, bob, "late")
    with pytest.raises(Forbidden):  # not the sender
        await world.deletes.delete(bob, late, Scope.EVERYONE)
    world.clock.advance(DAY_S)  # exactly 24 h after ``early``: still allowed
    assert await world.deletes.delete(alice, early, Scope.EVERYONE) is True
    world.clock.advance(0.001)
    with pytest.raises(Forbidden):  # 24 h and 1 ms after ``late``
        await world.deletes.delete(alice, late, Scope.EVERYONE)
    assert await world.deletes.delete(alice, early, Scope.EVERYONE) is False  # a repeat
    for who in (alice, bob):
        deletes = await world.entries(who, EntryKind.DELETE)
        assert [(e.draft.msg_id, e.draft.scope) for e in deletes] == [(early, "everyone")]
    cid = direct_id(alice.user_id, bob.user_id)
    assert [m.body for m in await world.views.history(bob, cid, None)] == ["late"]
    assert await world.unread(bob) == {cid: 1}


async def test_delete_for_me_hides_only_for_the_caller(world: World) -> None:
    alice, bob, carol, _ = world.users
    m1 = await world.send(alice, bob, "one")
    m2 = await world.send(alice, bob, "two")
    cid = direct_id(alice.user_id, bob.user_id)
    assert await world.deletes.delete(bob, m2, Scope.ME) is True  # anyone may, any time
    assert await world.deletes.delete(bob, m2, Scope.ME) is False
    assert [(e.draft.msg_id, e.draft.scope) for e in
            await world.entries(bob, EntryKind.DELETE)] == [(m2, "me")]  # fmt: skip
    assert await world.entries(alice, EntryKind.DELETE) == []
    assert [m.msg_id for m in await world.views.history(bob, cid, None)] == [m1]
    assert [m.msg_id for m in await world.views.history(alice, cid, None)] == [m2, m1]
    bob_row = (await world.views.summaries(bob))[0]
    assert bob_row.unread == 1 and bob_row.last_message is not None
    assert bob_row.last_message.msg_id == m1
    with pytest.raises(NotFound):  # not a participant: as if it did not exist
        await world.deletes.delete(carol, m1, Scope.ME)
    with pytest.raises(NotFound):
        await world.deletes.delete(bob, m1 + 12345, Scope.ME)
    await world.deletes.delete(alice, m1, Scope.EVERYONE)
    assert await world.deletes.delete(bob, m1, Scope.ME) is False  # already gone for all


# ---- list and history -------------------------------------------------------------------


async def test_list_newest_first_with_titles_last_message_and_unread(world: World) -> None:
    alice, bob, carol, _ = world.users
    await world.send(bob, alice, "from bob")
    await world.send(carol, alice, "from carol")
    await world.send(alice, alice, "note")
    await world.send(alice, alice, "note again")  # a replayed send below must not reorder
    rows = await world.views.summaries(alice)
    assert [(r.title, r.kind, r.unread) for r in rows] == [
        ("Alice", "direct", 0), ("Carol", "direct", 1), ("Bob", "direct", 1)]  # fmt: skip
    assert rows[0].last_message is not None and rows[0].last_message.body == "note again"
    await world.send(bob, alice, "bob again")
    assert [r.title for r in await world.views.summaries(alice)][:1] == ["Bob"]
    assert await world.views.total_unread(alice.user_id) == 3
    assert [r.title for r in await world.views.summaries(bob)] == ["Alice"]


async def test_a_replayed_send_restores_the_index(world: World) -> None:
    alice, bob, _, _ = world.users
    request = SendRequest("once", "same-key", to_user=bob.user_id)
    receipt, _ = await world.messages.send(alice, request)
    await world.db.run(  # simulate an index write lost after the append
        lambda conn: conn.execute("DELETE FROM user_conversations")
    )
    assert await world.views.summaries(bob) == []
    again, replayed = await world.messages.send(alice, request)
    assert replayed and again == receipt
    rows = await world.views.summaries(bob)
    assert [(r.conversation_id, r.unread) for r in rows] == [(receipt.conversation_id, 1)]


async def test_history_pages_skip_hidden_messages(world: World) -> None:
    alice, bob, carol, _ = world.users
    ids = [await world.send(alice, bob, f"m{i}") for i in range(7)]
    cid = direct_id(alice.user_id, bob.user_id)
    for hidden in ids[2:5]:
        await world.deletes.delete(bob, hidden, Scope.ME)
    first = await world.views.history(bob, cid, None, 2)
    assert [m.body for m in first] == ["m6", "m5"]
    second = await world.views.history(bob, cid, first[-1].msg_id, 2)
    assert [m.body for m in second] == ["m1", "m0"]  # filled past the hidden run
    assert await world.views.history(bob, cid, second[-1].msg_id, 2) == []
    with pytest.raises(Forbidden):
        await world.views.history(carol, cid, None)
    with pytest.raises(InvalidInput):
        await world.views.history(bob, cid, None, 201)


async def test_group_members_get_unread_from_their_join_on_and_leavers_drop_out(
    world: World,
) -> None:
    alice, bob, carol, dave = world.users
    group = await world.groups.create(alice, "Team", [bob.user_id])
    cid = f"g:{group.group_id}"
    assert [(r.title, r.kind, r.unread, r.last_message) for r in
            await world.views.summaries(bob)] == [("Team", "group", 0, None)]  # fmt: skip
    await world.send_group(alice, group.group_id, "before carol")
    await world.groups.add_members(alice, group.group_id, [carol.user_id])
    assert await world.unread(carol) == {cid: 0}  # the history before joining is not unread
    await world.send_group(bob, group.group_id, "after carol")
    assert await world.unread(carol) == {cid: 1}
    assert await world.unread(bob) == {cid: 1}
    assert await world.unread(alice) == {cid: 1}  # her own message is not unread
    await world.groups.remove_member(alice, group.group_id, carol.user_id)
    await world.send_group(alice, group.group_id, "without carol")
    assert await world.views.summaries(carol) == []
    assert await world.views.total_unread(carol.user_id) == 0
    assert await world.views.summaries(dave) == []
    with pytest.raises(Forbidden):
        await world.views.history(carol, cid, None)
    message = await world.send_group(bob, group.group_id, "to read")
    assert await world.reads.mark_read(alice, cid, message) is True
    assert [e.draft.up_to_msg_id for e in await world.entries(alice, EntryKind.READ)] == [message]
    assert await world.entries(bob, EntryKind.READ) == []  # groups: the reader's inbox only


# ---- only participants are indexed ------------------------------------------------------


async def test_a_replayed_key_is_indexed_for_the_original_chat_only(world: World) -> None:
    alice, bob, carol, dave = world.users
    request = SendRequest("for bob", "reused", to_user=bob.user_id)
    receipt, _ = await world.messages.send(alice, request)
    again, replayed = await world.messages.send(
        alice, SendRequest("other", "reused", to_user=carol.user_id))
    assert replayed and again == receipt
    group = await world.groups.create(alice, "Team", [dave.user_id])
    _, replayed = await world.messages.send(
        alice, SendRequest("other", "reused", to_group=group.group_id))
    assert replayed
    assert await world.views.summaries(carol) == []
    assert [r.conversation_id for r in await world.views.summaries(dave)] == [
        f"g:{group.group_id}"]  # fmt: skip
    assert await world.views.total_unread(dave.user_id) == 0
    assert await world.unread(bob) == {receipt.conversation_id: 1}
    assert await world.conversations.conversation_ids(carol.user_id) == []


async def test_the_list_never_shows_a_direct_chat_of_two_others(world: World) -> None:
    alice, bob, _, dave = world.users
    msg_id = await world.send(alice, bob)
    cid = direct_id(alice.user_id, bob.user_id)
    await world.conversations.record_activity([dave.user_id], cid, msg_id)  # a stray row
    assert await world.views.summaries(dave) == []
    assert await world.views.total_unread(dave.user_id) == 0
    assert [r.conversation_id for r in await world.views.summaries(bob)] == [cid]


# ---- a 503 after the state changed: the retry completes it, exactly once ----------------


async def test_a_read_whose_entry_failed_is_told_by_its_retry(world: World) -> None:
    alice, bob, _, _ = world.users
    m1 = await world.send(alice, bob)
    m2 = await world.send(alice, bob)
    cid = direct_id(alice.user_id, bob.user_id)
    world.flaky.fail_next(EntryKind.READ)
    with pytest.raises(Unavailable):
        await world.reads.mark_read(bob, cid, m2)  # the marker moved, the entry failed
    assert await world.entries(alice, EntryKind.READ) == []
    assert await world.reads.mark_read(bob, cid, m1) is False  # stale: writes nothing
    assert await world.reads.mark_read(bob, cid, m2) is True  # the retry tells the devices
    assert await world.reads.mark_read(bob, cid, m2) is False  # a repeat writes nothing
    for who in (alice, bob):
        reads = await world.entries(who, EntryKind.READ)
        assert [e.draft.up_to_msg_id for e in reads] == [m2]
    assert await world.unread(bob) == {cid: 0}


async def test_a_group_change_whose_event_failed_is_announced_by_the_retry(world: World) -> None:
    alice, bob, carol, _ = world.users
    group = await world.groups.create(alice, "Team", [bob.user_id])
    gid, cid = group.group_id, f"g:{group.group_id}"
    await world.send_group(alice, gid, "before carol")
    world.flaky.fail_next(EntryKind.GROUP_EVENT)
    with pytest.raises(Unavailable):  # bob is in already: only carol is added
        await world.groups.add_members(alice, gid, [bob.user_id, carol.user_id])
    assert carol.user_id in (await world.groups.get(alice, gid)).member_ids
    assert await world.group_events(carol) == []
    await world.groups.add_members(alice, gid, [bob.user_id, carol.user_id])  # the retry
    added = ("members_added", [carol.user_id])
    assert await world.group_events(carol) == [added]
    assert await world.group_events(bob) == [("created", [alice.user_id, bob.user_id]), added]
    assert await world.unread(carol) == {cid: 0}  # joined: the history is not unread
    assert await world.unread(bob) == {cid: 1}  # bob's join point did not move
    await world.groups.add_members(bob, gid, [carol.user_id])  # redundant: writes nothing
    assert len(await world.group_events(bob)) == 2

    world.flaky.fail_next(EntryKind.GROUP_EVENT)
    with pytest.raises(Unavailable):
        await world.groups.remove_member(alice, gid, carol.user_id)
    await world.groups.remove_member(alice, gid, carol.user_id)  # the retry
    await world.groups.remove_member(alice, gid, carol.user_id)  # and a repeat
    removed = ("member_removed", [carol.user_id])
    assert await world.group_events(carol) == [added, removed]
    assert await world.group_events(alice) == [
        ("created", [alice.user_id, bob.user_id]), added, removed]  # fmt: skip
    assert world.flaky.failed == 2


# ---- read-path costs --------------------------------------------------------------------


async def test_the_list_reads_history_from_the_newest_activity_down(world: World) -> None:
    alice, bob, _, _ = world.users
    await world.send(alice, bob, "old")
    last = await world.send(bob, alice, "newest")
    world.flaky.history_calls.clear()
    [row] = await world.views.summaries(alice)
    assert row.last_message is not None and row.last_message.msg_id == last
    assert world.flaky.history_calls == [(row.conversation_id, last + 1, 1)]


async def test_overlapping_deletes_for_everyone_write_one_entry(world: World) -> None:
    # A client retrying a delete still in flight: both pass the "not deleted yet" check.
    alice, bob, _, _ = world.users
    msg_id = await world.send(alice, bob, "oops")
    written = await asyncio.gather(world.deletes.delete(alice, msg_id, Scope.EVERYONE),
                                   world.deletes.delete(alice, msg_id, Scope.EVERYONE))
    assert sorted(written) == [False, True]
    for who in (alice, bob):
        assert len(await world.entries(who, EntryKind.DELETE)) == 1


# ---- delete for everyone reaches who left since -----------------------------------------


async def test_delete_for_everyone_reaches_members_who_left_after_the_message(
    world: World,
) -> None:
    alice, bob, carol, dave = world.users
    group = await world.groups.create(alice, "Team", [bob.user_id, carol.user_id, dave.user_id])
    gid = group.group_id
    await world.groups.remove_member(alice, gid, dave.user_id)  # left before the message
    msg_id = await world.send_group(alice, gid, "oops")
    await world.groups.remove_member(carol, gid, carol.user_id)  # left after it
    assert await world.deletes.delete(alice, msg_id, Scope.EVERYONE) is True
    for who in (alice, bob, carol):
        assert [e.draft.msg_id for e in await world.entries(who, EntryKind.DELETE)] == [msg_id]
    assert await world.entries(dave, EntryKind.DELETE) == []


async def test_a_send_retried_after_leaving_the_group_is_still_a_replay(world: World) -> None:
    alice, bob, _, _ = world.users
    group = await world.groups.create(alice, "Team", [bob.user_id])
    request = SendRequest("see you", "k-left", to_group=group.group_id)
    first, _ = await world.messages.send(bob, request)  # stored; say the answer was lost
    await world.groups.remove_member(bob, group.group_id, bob.user_id)  # bob leaves
    assert await world.messages.send(bob, request) == (first, True)
    with pytest.raises(Forbidden):  # a new send is refused as before
        await world.messages.send(bob, SendRequest("hi", "k-new", to_group=group.group_id))
