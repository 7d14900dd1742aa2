"""Cassandra adapters against a real node: the durable inbox layer and the AccountStore."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from idgen.snowflake import min_id_for_ms
from inbox.accounts.store_cassandra import ACCOUNT_STATEMENTS, CassandraAccountStore
from inbox.core.errors import Conflict, Unavailable
from inbox.core.models import (
    Device,
    EntryDraft,
    EntryKind,
    Message,
    PushTarget,
    SendReceipt,
    User,
)
from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox, DurableAppend
from inbox.storage.cassandra_schema import BUCKET_MS, bucket_of, replication_cql
from inbox.storage.cql_session import CqlSession


@pytest.fixture
async def cql(cassandra_server, keyspace: str) -> AsyncIterator[CqlSession]:  # type: ignore[no-untyped-def]
    session = await CqlSession.connect(
        [cassandra_server.contact_point], keyspace, migrate=False,
        statements={**INBOX_STATEMENTS, **ACCOUNT_STATEMENTS},
    )  # fmt: skip
    yield session
    await session.close()


def _now() -> int:
    return int(time.time() * 1000)


def _draft(msg_id: int, body: str = "hi", kind: EntryKind = EntryKind.MESSAGE) -> EntryDraft:
    return EntryDraft(kind, msg_id, "d:1:2", 1, 11, _now(), body=body)


async def test_requests_are_not_held_back_by_nagle(cql: CqlSession) -> None:
    # With Nagle on, a request over one segment (a 16 KiB body) waited for the server's delayed
    # ACK: 40 ms per send. Checked on the sockets themselves, as latency on a busy box varies.
    pools = cql.session.get_pools()
    assert pools
    for pool in pools:
        sock = pool._connection._socket  # noqa: SLF001 (the driver exposes no accessor)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_replication_settings_render() -> None:
    nts = {"class": "NetworkTopologyStrategy", "dc1": 3, "dc2": 2}
    assert replication_cql(nts) == "{'class': 'NetworkTopologyStrategy', 'dc1': '3', 'dc2': '2'}"
    with pytest.raises(ValueError, match="invalid replication"):
        replication_cql({"class": "x'; DROP"})


async def test_rows_span_buckets_and_read_in_position_order(cql: CqlSession) -> None:
    inbox = CassandraInbox(cql)
    now = _now()
    old = min_id_for_ms(now - 3 * BUCKET_MS)  # three buckets back: the scan must cross them
    await inbox.set_first_bucket(7, bucket_of(old))
    positions = [old, old + 1, min_id_for_ms(now - BUCKET_MS), min_id_for_ms(now)]
    for i, pos in enumerate(positions):
        await inbox.write(DurableAppend(_draft(pos, f"m{i}"), {7: pos}), None, now * 1000)
    got = await inbox.read(7, 0, positions[-1], 10)
    assert [e.id for e in got] == positions
    assert [e.draft.body for e in got] == ["m0", "m1", "m2", "m3"]
    assert [e.id for e in await inbox.read(7, old, positions[-1], 2)] == positions[1:3]
    assert await inbox.max_position(7, now) == positions[-1]
    assert await inbox.max_position(7, now, upto=positions[-1] - 1) == positions[2]
    assert await inbox.max_position(8, now) == 0


async def test_fence_beats_a_late_write(cql: CqlSession) -> None:
    inbox = CassandraInbox(cql)
    mid = min_id_for_ms(_now())
    message = Message(mid, "d:1:2", 1, 11, "late", _now())
    append = DurableAppend(_draft(mid, "late"), {21: mid, 22: mid}, message, (1, "late-1"))
    receipt = SendReceipt(mid, mid, "d:1:2", message.created_at_ms)
    await inbox.fence(append, 1001)
    await inbox.write(append, receipt, 1000)  # lands after the fence, with an older timestamp
    assert await inbox.read(21, 0, mid, 10) == []
    assert await inbox.get_message(mid) is None
    assert await inbox.get_receipt(1, "late-1") is None
    await inbox.write(append, receipt, 2000)  # a retry with a later deadline wins again
    assert await inbox.get_receipt(1, "late-1") == receipt


async def test_history_newest_first_skips_deleted(cql: CqlSession) -> None:
    inbox = CassandraInbox(cql)
    now = _now()
    ids = [min_id_for_ms(now - 2 * BUCKET_MS) + i for i in range(3)] + [
        min_id_for_ms(now) + i for i in range(3)
    ]
    for mid in ids:
        msg = Message(mid, "g:55", 1, 11, f"b{mid}", now)
        await inbox.write(DurableAppend(_draft(mid), {1: mid}, msg), None, now * 1000)
    delete = EntryDraft(EntryKind.DELETE, ids[4], "g:55", 1, 11, now, scope="everyone")
    await inbox.write(DurableAppend(delete, {1: ids[-1] + 1}), None, now * 1000)
    history = await inbox.history("g:55", None, 10, now)
    assert [m.msg_id for m in history] == [ids[5], ids[3], ids[2], ids[1], ids[0]]
    assert [m.msg_id for m in await inbox.history("g:55", ids[3], 2, now)] == ids[2:0:-1]
    assert await inbox.get_message(ids[4]) is None
    assert (await inbox.get_message(ids[0])) == history[-1]


async def test_create_user_is_unique_by_username(cql: CqlSession) -> None:
    accounts = CassandraAccountStore(cql)
    alice = User(101, "alice", "Alice", "hash", _now())
    await accounts.create_user(alice)
    await accounts.create_user(alice)  # the same user again (a retry) is not a conflict
    with pytest.raises(Conflict) as taken:
        await accounts.create_user(User(102, "alice", "Other", "hash", _now()))
    assert taken.value.code == "username_taken"
    assert await accounts.find_user("alice") == alice
    assert await accounts.get_user(101) == alice
    assert await accounts.get_user(102) is None
    assert await accounts.find_user("nobody") is None


async def test_devices_ack_and_push(cql: CqlSession) -> None:
    accounts = CassandraAccountStore(cql)
    now = _now()
    await accounts.put_device(Device(201, 5, "phone", "ios", True, 0, now))
    await accounts.put_device(Device(202, 5, "tablet", "android", True, 0, now + 1,
                                     push=PushTarget("fcm", "tok-1")))  # fmt: skip
    assert await accounts.ack(201, 50) == 50
    assert await accounts.ack(201, 20) == 50  # never lower
    assert (await accounts.get_device(201)).cur_max_msg_id == 50  # type: ignore[union-attr]
    await accounts.set_push(201, PushTarget("apns", "tok-1", "topic"))  # moves the token
    devices = await accounts.list_devices(5)
    assert [d.device_id for d in devices] == [201, 202]
    assert devices[0].push == PushTarget("apns", "tok-1", "topic")
    assert devices[1].push is None
    assert await accounts.clear_push(201, "tok-other") is False  # compare-and-clear
    assert await accounts.clear_push(201, "tok-1") is True
    assert await accounts.clear_push(201) is False
    await accounts.set_push(202, PushTarget("fcm", "tok-2"))
    await accounts.touch(202, now + 5)
    await accounts.deactivate_device(202)
    gone = await accounts.get_device(202)
    assert gone is not None and not gone.active and gone.push is None
    assert gone.last_seen_ms == now + 5
    assert [d.device_id for d in await accounts.list_devices(5)] == [201]


async def test_concurrent_writes_share_batches_and_all_land(cql: CqlSession) -> None:
    """Writes issued together are combined into shared unlogged batches (``cql_writes``);
    every row lands, including a body too large to share a batch."""
    inbox = CassandraInbox(cql)
    now = _now()
    base = min_id_for_ms(now)
    members = [3000 + i for i in range(25)]
    bodies = [f"m{i}" if i % 10 else "y" * 9000 for i in range(30)]

    async def send(i: int) -> None:
        mid = base + i
        message = Message(mid, "g:77", 1, 11, bodies[i], now)
        await inbox.write(DurableAppend(_draft(mid, bodies[i]), dict.fromkeys(members, mid),
                                        message), None, now * 1000)  # fmt: skip

    await asyncio.gather(*(send(i) for i in range(30)))
    for uid in (members[0], members[-1]):
        got = await inbox.read(uid, 0, base + 29, 100)
        assert [(e.id, e.draft.body) for e in got] == [(base + i, bodies[i]) for i in range(30)]
    history = await inbox.history("g:77", None, 100, now)
    assert [m.msg_id for m in history] == [base + i for i in range(29, -1, -1)]


async def test_a_rejected_row_fails_its_write_not_later_ones(cql: CqlSession) -> None:
    inbox = CassandraInbox(cql)
    now = _now()
    mid = min_id_for_ms(now)
    bad = DurableAppend(_draft(mid), {31: mid}, idempotency_key=(1, "k" * 70_000))
    receipt = SendReceipt(mid, mid, "d:1:2", now)
    with pytest.raises(Unavailable):  # Cassandra refuses a key over 64 KiB
        await inbox.write(bad, receipt, now * 1000)
    good = DurableAppend(_draft(mid + 1), {31: mid + 1})
    await inbox.write(good, None, now * 1000)
    assert [e.id for e in await inbox.read(31, mid, mid + 1, 10)] == [mid + 1]
