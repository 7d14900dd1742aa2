"""ConversationStore contract, one suite run against the embedded SQLite store and Cassandra.

Messages are written the way sends write them (the SQLite inbox store's append; Cassandra's
durable inbox write), because unread counts are counted from the history tables.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from idgen.snowflake import min_id_for_ms
from inbox.conversations import store_cassandra as conversations_cassandra
from inbox.conversations.port import ConversationStore
from inbox.conversations.store_cassandra import CONVERSATION_STATEMENTS, CassandraConversationStore
from inbox.conversations.store_sqlite import SqliteConversationStore
from inbox.core.models import AppendBatch, EntryDraft, EntryKind, Message
from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox, DurableAppend
from inbox.messages.store_sqlite import SqliteInboxStore
from inbox.storage.cassandra_schema import BUCKET_MS
from inbox.storage.cql_session import CqlSession
from inbox.storage.sqlite_db import SqliteDatabase

_users = itertools.count(7_000_000)
_NOW = int(time.time() * 1000)
_ids = itertools.count(min_id_for_ms(_NOW))
Write = Callable[[EntryDraft, Message | None], Awaitable[None]]


@dataclass
class Backend:
    """The store under test and how to put history rows beside it."""

    store: ConversationStore
    write: Write

    async def message(self, cid: str, sender: int, msg_id: int | None = None) -> int:
        """Store a message of ``sender`` in ``cid``'s history; its id."""
        mid = msg_id or next(_ids)
        draft = EntryDraft(EntryKind.MESSAGE, mid, cid, sender, 1, _NOW, body=f"m{mid}")
        await self.write(draft, Message(mid, cid, sender, 1, f"m{mid}", _NOW))
        return mid

    async def delete_for_everyone(self, cid: str, sender: int, msg_id: int) -> None:
        draft = EntryDraft(EntryKind.DELETE, msg_id, cid, sender, 1, _NOW, scope="everyone")
        await self.write(draft, None)


@pytest.fixture(params=["sqlite", "cassandra"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "convs.db")
        await db.open()
        inbox = SqliteInboxStore(db)

        async def write_sqlite(draft: EntryDraft, message: Message | None) -> None:
            await inbox.append(AppendBatch(draft, (draft.sender_id,), message))

        yield Backend(SqliteConversationStore(db), write_sqlite)
        await db.close()
        return
    server = request.getfixturevalue("cassandra_server")
    keyspace = request.getfixturevalue("keyspace")
    cql = await CqlSession.connect([server.contact_point], keyspace, migrate=False,
                                   statements={**INBOX_STATEMENTS, **CONVERSATION_STATEMENTS})
    durable = CassandraInbox(cql)

    async def write_cassandra(draft: EntryDraft, message: Message | None) -> None:
        position = next(_ids)
        append = DurableAppend(draft, {draft.sender_id: position}, message)
        await durable.write(append, None, _NOW * 1000)

    yield Backend(CassandraConversationStore(cql), write_cassandra)
    await cql.close()


def _direct(a: int, b: int) -> str:
    return f"d:{min(a, b)}:{max(a, b)}"


async def _unread(store: ConversationStore, user: int) -> dict[str, int]:
    return {s.conversation_id: s.unread for s in await store.conversations(user)}


async def test_activity_is_a_max_register_listed_newest_first(backend: Backend) -> None:
    store = backend.store
    me, bob, carol = next(_users), next(_users), next(_users)
    with_bob, with_carol = _direct(me, bob), _direct(me, carol)
    m1, m2, m3 = next(_ids), next(_ids), next(_ids)
    await store.record_activity([me, bob], with_bob, m1)
    await store.record_activity([me, carol], with_carol, m2)
    await store.record_activity([me, bob], with_bob, m3)
    await store.record_activity([me, bob, bob], with_bob, m1)  # a late replay lowers nothing
    listed = await store.conversations(me)
    assert [(s.conversation_id, s.last_msg_id) for s in listed] == [(with_bob, m3),
                                                                    (with_carol, m2)]
    assert [s.conversation_id for s in await store.conversations(carol)] == [with_carol]
    assert await store.conversations(next(_users)) == []


async def test_unread_counts_messages_from_others_above_the_marker(backend: Backend) -> None:
    store = backend.store
    me, bob = next(_users), next(_users)
    cid = _direct(me, bob)
    mine = await backend.message(cid, me)
    first, second, third = [await backend.message(cid, bob) for _ in range(3)]
    await store.record_activity([me, bob], cid, third)
    late = await backend.message(cid, bob)  # in history, but not yet recorded as activity
    assert await _unread(store, me) == {cid: 3}  # own message and unrecorded one not counted
    assert await _unread(store, bob) == {cid: 1}
    assert await store.mark_read(me, cid, first) is True
    assert await _unread(store, me) == {cid: 2}
    await store.record_activity([me, bob], cid, late)
    state = (await store.conversations(me))[0]
    assert (state.read_up_to, state.unread, state.last_msg_id) == (first, 3, late)
    assert mine < first  # (ids are increasing: the own message sits below the marker)
    assert second < third


async def test_stale_and_repeated_reads_never_move_the_marker_back(backend: Backend) -> None:
    store = backend.store
    me, bob = next(_users), next(_users)
    cid = _direct(me, bob)
    m1, m2 = await backend.message(cid, bob), await backend.message(cid, bob)
    await store.record_activity([me, bob], cid, m2)
    assert await store.mark_read(me, cid, m2) is True
    assert await store.mark_read(me, cid, m1) is False  # stale
    assert await store.mark_read(me, cid, m2) is False  # repeated
    state = (await store.conversations(me))[0]
    assert (state.read_up_to, state.unread) == (m2, 0)
    assert (await store.conversations(bob))[0].read_up_to == 0  # markers are per user


async def test_concurrent_equal_reads_move_the_marker_once(backend: Backend) -> None:
    store = backend.store
    me, bob = next(_users), next(_users)
    cid = _direct(me, bob)
    ids = [await backend.message(cid, bob) for _ in range(3)]
    await store.record_activity([me, bob], cid, ids[-1])
    moved = await asyncio.gather(*(store.mark_read(me, cid, ids[1]) for _ in range(6)))
    assert moved.count(True) == 1
    forward, stale = await asyncio.gather(store.mark_read(me, cid, ids[2]),
                                          store.mark_read(me, cid, ids[0]))  # fmt: skip
    assert (forward, stale) == (True, False)
    assert (await store.conversations(me))[0].read_up_to == ids[2]


async def test_deleted_and_hidden_messages_are_not_unread(backend: Backend) -> None:
    store = backend.store
    me, bob = next(_users), next(_users)
    cid = _direct(me, bob)
    ids = [await backend.message(cid, bob) for _ in range(4)]
    await store.record_activity([me, bob], cid, ids[-1])
    await backend.delete_for_everyone(cid, bob, ids[0])
    await store.hide(me, cid, ids[1])
    await store.hide(me, cid, ids[1])  # idempotent
    assert await _unread(store, me) == {cid: 2}
    assert await store.hidden(me, cid, ids) == {ids[1]}
    assert await store.hidden(bob, cid, ids) == set()  # hidden for me only
    assert await store.hidden(me, cid, []) == set()


async def test_join_point_keeps_older_history_out_of_unread(backend: Backend) -> None:
    store = backend.store
    owner, late = next(_users), next(_users)
    cid = f"g:{next(_users)}"
    before = [await backend.message(cid, owner) for _ in range(3)]
    joined = next(_ids)  # the group event that added ``late``
    await store.record_join([late], cid, joined)
    await store.record_activity([owner, late], cid, joined)
    assert await _unread(store, late) == {cid: 0}
    after = await backend.message(cid, owner)
    await store.record_activity([owner, late], cid, after)
    assert await _unread(store, late) == {cid: 1}
    await store.record_join([late], cid, before[0])  # an older join lowers nothing
    assert await _unread(store, late) == {cid: 1}


async def test_a_group_s_activity_is_seen_by_everyone_who_joined(backend: Backend) -> None:
    store = backend.store
    owner, member, outsider = next(_users), next(_users), next(_users)
    cid = f"g:{next(_users)}"
    created = next(_ids)
    await store.record_join([owner, member], cid, created)
    assert await store.conversation_ids(member) == [cid]  # joined: a contact already
    await store.record_activity([owner, member], cid, created)
    sent = await backend.message(cid, owner)
    await store.record_activity([owner], cid, sent)  # the group's activity, not per user
    for user in (owner, member):
        [state] = await store.conversations(user)
        assert (state.conversation_id, state.last_msg_id) == (cid, sent)
    assert await _unread(store, member) == {cid: 1}
    assert await store.conversations(outsider) == []
    await store.record_activity([member], cid, created)  # a late replay lowers nothing
    assert (await store.conversations(member))[0].last_msg_id == sent


async def test_message_status_sees_deleted_messages(backend: Backend) -> None:
    store = backend.store
    me, bob = next(_users), next(_users)
    cid = _direct(me, bob)
    mid = await backend.message(cid, bob)
    status = await store.message_status(mid)
    assert status is not None and not status.deleted
    assert (status.message.conversation_id, status.message.sender_id) == (cid, bob)
    assert status.message.body == f"m{mid}"
    await backend.delete_for_everyone(cid, bob, mid)
    status = await store.message_status(mid)
    assert status is not None and status.deleted
    assert await store.message_status(next(_ids)) is None


async def test_unread_counts_across_buckets_and_pages(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversations_cassandra, "UNREAD_PAGE", 2)  # page inside buckets
    store = backend.store
    me, bob = next(_users), next(_users)
    cid = _direct(me, bob)
    old = min_id_for_ms(_NOW - 3 * BUCKET_MS)  # three buckets back: the count crosses them
    ids = [await backend.message(cid, bob, old + i) for i in range(5)]
    ids += [await backend.message(cid, bob, min_id_for_ms(_NOW - BUCKET_MS) + i)
            for i in range(3)]  # fmt: skip
    ids += [await backend.message(cid, bob) for _ in range(3)]
    await store.record_activity([me, bob], cid, ids[-1])
    assert await _unread(store, me) == {cid: 11}
    assert await store.mark_read(me, cid, ids[3]) is True
    assert await _unread(store, me) == {cid: 7}


async def test_read_marker_and_the_cheap_listing_of_ids(backend: Backend) -> None:
    store = backend.store
    me, bob, carol = next(_users), next(_users), next(_users)
    with_bob, with_carol = _direct(me, bob), _direct(me, carol)
    m1 = await backend.message(with_bob, bob)
    await store.record_activity([me, bob], with_bob, m1)
    assert await store.read_marker(me, with_bob) == 0
    assert await store.mark_read(me, with_bob, m1) is True
    assert await store.read_marker(me, with_bob) == m1
    assert await store.read_marker(bob, with_bob) == 0
    assert await store.mark_read(me, with_carol, next(_ids)) is True  # read, no activity
    assert await store.conversation_ids(me) == [with_bob]
    assert [s.conversation_id for s in await store.conversations(me)] == [with_bob]
    assert await store.conversation_ids(bob) == [with_bob]
    assert await store.conversation_ids(next(_users)) == []


async def test_departures_after_a_message(backend: Backend) -> None:
    store = backend.store
    a, b, c = next(_users), next(_users), next(_users)
    cid = f"g:{next(_users)}"
    early = next(_ids)
    await store.record_departure([a], cid, early)
    message = next(_ids)
    left = next(_ids)
    await store.record_departure([b, c, b], cid, left)
    await store.record_departure([b], cid, left)  # a replayed event: idempotent
    assert sorted(await store.departed_since(cid, message)) == sorted([b, c])
    assert sorted(await store.departed_since(cid, early - 1)) == sorted([a, b, c])
    assert await store.departed_since(cid, left) == []
    assert await store.departed_since(f"g:{next(_users)}", 0) == []


class _CountingCql:
    """Our own stand-in for ``CqlSession``: ``conv_list`` names ``rows`` conversations with
    unread messages; every other query yields to the loop and answers nothing, while the
    most queries in flight at once are counted."""

    def __init__(self, rows: int) -> None:
        self._rows = rows
        self.in_flight = 0
        self.most = 0

    async def execute(self, name: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if name == "conv_list":
            return [(f"d:1:{n + 2}", next(_ids), None, None) for n in range(self._rows)]
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        for _ in range(3):
            await asyncio.sleep(0)  # let every other ready task start its own query
        self.in_flight -= 1
        return []


async def test_unread_counts_run_at_most_a_bounded_number_at_once() -> None:
    cql = _CountingCql(rows=200)
    store = CassandraConversationStore(cast(CqlSession, cql))
    states = await store.conversations(1)
    assert len(states) == 200 and all(s.unread == 0 for s in states)
    assert cql.most == conversations_cassandra.UNREAD_CONCURRENCY
