"""GroupStore contract, one suite run against the embedded SQLite store and Cassandra.

Includes invariant 4 under contention: many concurrent adds racing for the last seats never
make a group of 101, fill exactly the free seats, and apply multi-id adds all or nothing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inbox.core.errors import Conflict, NotFound
from inbox.core.models import MAX_GROUP_MEMBERS, Group, GroupChange
from inbox.groups.membership import new_group
from inbox.groups.port import GroupStore
from inbox.groups.store_cassandra import GROUP_STATEMENTS, CassandraGroupStore
from inbox.groups.store_sqlite import SqliteGroupStore
from inbox.storage.cql_session import CqlSession
from inbox.storage.sqlite_db import SqliteDatabase

_ids = itertools.count(1_000_000)


def _id() -> int:
    """A fresh id (groups and users of every test are disjoint in the shared keyspace)."""
    return next(_ids)


@pytest.fixture(params=["sqlite", "cassandra"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GroupStore]:
    if request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "groups.db")
        await db.open()
        yield SqliteGroupStore(db)
        await db.close()
        return
    server = request.getfixturevalue("cassandra_server")
    keyspace = request.getfixturevalue("keyspace")
    cql = await CqlSession.connect([server.contact_point], keyspace, migrate=False,
                                   statements=GROUP_STATEMENTS)
    yield CassandraGroupStore(cql)
    await cql.close()


async def _group_of(store: GroupStore, size: int) -> Group:
    """A stored group of ``size`` members (owner first), created at once."""
    owner = _id()
    group = new_group(_id(), "team", owner, [_id() for _ in range(size - 1)], 1_700_000_000_000)
    await store.create(group)
    return group


async def test_create_get_and_groups_of(store: GroupStore) -> None:
    owner, a, b = _id(), _id(), _id()
    group = new_group(_id(), "friends", owner, [a, b, a, owner], 1_700_000_000_123)
    assert group.member_ids == (owner, a, b)  # owner first, deduplicated, in order
    await store.create(group)
    await store.create(group)  # a retry of the same create changes nothing
    assert await store.get(group.group_id) == group
    assert await store.get(_id()) is None
    for uid in (owner, a, b):
        assert await store.groups_of(uid) == [group.group_id]
    assert await store.groups_of(_id()) == []


async def test_create_keys_bind_once_per_owner(store: GroupStore) -> None:
    owner, other = _id(), _id()
    first = _id()
    assert await store.claim_create_key(owner, "k", first) == first
    assert await store.claim_create_key(owner, "k", _id()) == first
    assert await store.claim_create_key(other, "k", (theirs := _id())) == theirs
    racers = [_id() for _ in range(10)]
    bound = await asyncio.gather(*(store.claim_create_key(owner, "race", g) for g in racers))
    assert len(set(bound)) == 1 and bound[0] in racers


async def test_create_past_the_cap_is_group_full(store: GroupStore) -> None:
    with pytest.raises(Conflict) as full:
        new_group(_id(), "big", _id(), [_id() for _ in range(MAX_GROUP_MEMBERS)], 0)
    assert full.value.code == "group_full"
    members = tuple(_id() for _ in range(MAX_GROUP_MEMBERS + 1))
    oversized = Group(_id(), "big", members[0], members, 0)
    with pytest.raises(Conflict):
        await store.create(oversized)
    assert await store.get(oversized.group_id) is None
    assert await store.groups_of(members[0]) == []


async def test_add_members_ignores_present_ids_and_keeps_join_order(store: GroupStore) -> None:
    group = await _group_of(store, 2)
    owner, first = group.member_ids
    c, d = _id(), _id()
    change = await store.add_members(group.group_id, [c, first, d, c])
    assert change.user_ids == (c, d)
    assert change.group.member_ids == (owner, first, c, d)
    assert await store.get(group.group_id) == change.group
    again = await store.add_members(group.group_id, [owner, c])
    assert again.user_ids == () and again.group == change.group
    assert await store.groups_of(d) == [group.group_id]


async def test_unknown_group_is_not_found(store: GroupStore) -> None:
    with pytest.raises(NotFound):
        await store.add_members(_id(), [_id()])
    with pytest.raises(NotFound):
        await store.remove_member(_id(), _id())


async def test_add_past_the_cap_changes_nothing(store: GroupStore) -> None:
    group = await _group_of(store, MAX_GROUP_MEMBERS - 1)
    late = [_id(), _id()]
    with pytest.raises(Conflict) as full:
        await store.add_members(group.group_id, late)  # one seat, two ids: all or nothing
    assert full.value.code == "group_full"
    assert await store.get(group.group_id) == group
    assert await store.groups_of(late[0]) == []
    last = await store.add_members(group.group_id, late[:1])
    assert len(last.group.member_ids) == MAX_GROUP_MEMBERS
    present = await store.add_members(group.group_id, [group.owner_id])  # full, but no change
    assert present.user_ids == ()


async def test_owner_leaving_hands_over_to_longest_standing(store: GroupStore) -> None:
    group = await _group_of(store, 4)
    owner, second, third, fourth = group.member_ids
    gone = await store.remove_member(group.group_id, third)
    assert gone.user_ids == (third,)
    assert gone.group.owner_id == owner and gone.group.member_ids == (owner, second, fourth)
    back = await store.add_members(group.group_id, [third])  # rejoins at the end
    assert back.group.member_ids == (owner, second, fourth, third)
    handed = await store.remove_member(group.group_id, owner)
    assert handed.group.owner_id == second
    assert handed.group.member_ids == (second, fourth, third)
    assert (await store.remove_member(group.group_id, owner)).user_ids == ()  # not a member
    assert await store.groups_of(owner) == []
    assert await store.groups_of(third) == [group.group_id]
    handed = await store.remove_member(group.group_id, second)
    assert handed.group.owner_id == fourth  # joined before third rejoined


async def test_last_member_leaving_leaves_an_empty_group(store: GroupStore) -> None:
    group = await _group_of(store, 2)
    owner, other = group.member_ids
    await store.remove_member(group.group_id, owner)
    last = await store.remove_member(group.group_id, other)
    assert last.group.member_ids == ()
    stored = await store.get(group.group_id)
    assert stored is not None and stored.member_ids == () and stored.name == "team"
    assert await store.groups_of(other) == []


async def test_groups_of_lists_every_group_ascending(store: GroupStore) -> None:
    user = _id()
    groups = [await _group_of(store, 1) for _ in range(3)]
    for g in groups:
        await store.add_members(g.group_id, [user])
    await store.remove_member(groups[1].group_id, user)
    assert await store.groups_of(user) == sorted([groups[0].group_id, groups[2].group_id])


async def test_concurrent_single_adds_fill_exactly_the_free_seats(store: GroupStore) -> None:
    """Invariant 4: 25 adds race for 10 seats; exactly 10 win, never 101 members."""
    group = await _group_of(store, MAX_GROUP_MEMBERS - 10)
    racers = [_id() for _ in range(25)]
    results = await asyncio.gather(
        *(store.add_members(group.group_id, [uid]) for uid in racers), return_exceptions=True
    )
    won = [uid for uid, r in zip(racers, results, strict=True) if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 10
    assert all(isinstance(e, Conflict) and e.code == "group_full" for e in lost)
    final = await store.get(group.group_id)
    assert final is not None and len(final.member_ids) == MAX_GROUP_MEMBERS
    assert set(final.member_ids) == set(group.member_ids) | set(won)
    assert [await store.groups_of(uid) for uid in racers].count([group.group_id]) == 10


async def test_concurrent_multi_id_adds_are_all_or_nothing(store: GroupStore) -> None:
    """20 adds of three ids each race for 6 seats: exactly two whole triples get in."""
    group = await _group_of(store, MAX_GROUP_MEMBERS - 6)
    triples = [[_id(), _id(), _id()] for _ in range(20)]
    results = await asyncio.gather(
        *(store.add_members(group.group_id, t) for t in triples), return_exceptions=True
    )
    won = [t for t, r in zip(triples, results, strict=True) if not isinstance(r, Exception)]
    assert len(won) == 2
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    final = await store.get(group.group_id)
    assert final is not None and len(final.member_ids) == MAX_GROUP_MEMBERS
    assert final.member_ids[: len(group.member_ids)] == group.member_ids
    assert set(final.member_ids[len(group.member_ids):]) == {u for t in won for u in t}


async def test_concurrent_adds_and_leaves_keep_every_change(store: GroupStore) -> None:
    """Changes that race without hitting the cap are all applied (no lost update)."""
    group = await _group_of(store, 20)
    leavers = list(group.member_ids[1:11])
    joiners = [_id() for _ in range(10)]
    changes = await asyncio.gather(
        *(store.remove_member(group.group_id, uid) for uid in leavers),
        *(store.add_members(group.group_id, [uid]) for uid in joiners),
    )
    # Each change got a version of its own (its announcement's key): 2..21, none shared.
    assert sorted(c.last.version for c in changes if c.last) == list(range(2, 22))
    final = await store.get(group.group_id)
    assert final is not None
    expected = set(group.member_ids) - set(leavers) | set(joiners)
    assert set(final.member_ids) == expected and len(final.member_ids) == 20
    assert final.owner_id == group.owner_id
    for uid in leavers:
        assert await store.groups_of(uid) == []
    for uid in joiners:
        assert await store.groups_of(uid) == [group.group_id]


async def test_every_change_records_itself_with_the_new_version(store: GroupStore) -> None:
    group = await _group_of(store, 2)
    gid, (owner, first) = group.group_id, group.member_ids
    assert (await store.add_members(gid, [owner])).last == GroupChange(
        1, "created", group.member_ids)  # a no-op answers what was recorded: the create
    late = _id()
    added = await store.add_members(gid, [first, late])
    assert added.last == GroupChange(2, "members_added", (late,))
    again = await store.add_members(gid, [late, first])
    assert again.user_ids == () and again.last == added.last
    gone = await store.remove_member(gid, first)
    assert gone.last == GroupChange(3, "member_removed", (first,))
    assert (await store.remove_member(gid, first)).last == gone.last
    back = await store.add_members(gid, [first])  # rejoining is a new change, a new version
    assert back.last == GroupChange(4, "members_added", (first,))
