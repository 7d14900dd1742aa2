"""The production InboxStore (Redis + Cassandra): its contract, and guarantees 1-3 of
docs/architecture.md."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from idgen.snowflake import SnowflakeGenerator
from inbox.core.errors import Unavailable
from inbox.core.models import AppendBatch, Entry, EntryDraft, EntryKind, Message, SendReceipt
from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox, DurableAppend
from inbox.messages.log_redis import RedisInboxLog, Reservation, draft_to_json
from inbox.messages.store_hybrid import HybridInboxStore
from inbox.storage.cql_session import CqlSession
from tests.servers.cassandra_server import unique_keyspace

TTL_MS = 1000
SKEW_MS = 200
StoreFactory = Callable[..., Awaitable[HybridInboxStore]]


@pytest.fixture
async def make_store(cassandra_server, redis_server, keyspace) -> AsyncIterator[StoreFactory]:  # type: ignore[no-untyped-def]
    """Build stores with their own clients (one per simulated node)."""
    opened: list[tuple[Redis, CqlSession]] = []

    async def build(redis_url: str | None = None, contact: str | None = None,
                    maxlen: int = 10000, ks: str | None = None) -> HybridInboxStore:  # fmt: skip
        redis = Redis.from_url(redis_url or redis_server.url, socket_timeout=2)
        cql = await CqlSession.connect([contact or cassandra_server.contact_point],
                                       ks or keyspace, statements=INBOX_STATEMENTS,
                                       request_timeout=2.0, migrate=ks is not None)  # fmt: skip
        opened.append((redis, cql))
        log = RedisInboxLog(redis, maxlen=maxlen, skew_ms=SKEW_MS)
        return HybridInboxStore(log, CassandraInbox(cql), pending_ttl_ms=TTL_MS)

    yield build
    for redis, cql in opened:
        await redis.aclose()
        await cql.close()


def _user() -> int:
    return random.randrange(10**12, 10**15)


def _batch(gen: SnowflakeGenerator, users: tuple[int, ...], body: str, key: str | None = None,
           msg_id: int | None = None) -> AppendBatch:  # fmt: skip
    mid = msg_id or gen.next_id()
    cid = f"d:{min(users)}:{max(users)}"
    draft = EntryDraft(EntryKind.MESSAGE, mid, cid, users[0], 1, int(time.time() * 1000), body)
    message = Message(mid, cid, users[0], 1, body, draft.created_at_ms)
    return AppendBatch(draft, users, message, (users[0], key) if key else None, users[0])


async def _sync_all(store: HybridInboxStore, user: int, limit: int = 3,
                    after: int = 0) -> list[Entry]:  # fmt: skip
    out: list[Entry] = []
    while True:
        page = await store.read(user, after, limit)
        out += page.entries
        if page.entries:
            after = page.entries[-1].id
        if not page.has_more:
            return out


async def test_contract_append_read_head_history(make_store: StoreFactory) -> None:
    store = await make_store()
    gen = SnowflakeGenerator(1)
    a, b = _user(), _user()
    assert await store.head(a) == 0 and (await store.read(a, 0, 10)).entries == []
    first = await store.append(_batch(gen, (a, b), "one", "k1"))
    second = await store.append(_batch(gen, (a, b), "two"))
    assert first.receipt is not None and first.receipt.id == first.positions[a]
    assert second.previous == first.positions and second.positions[a] > first.positions[a]
    page = await store.read(b, 0, 1)
    assert [e.draft.body for e in page.entries] == ["one"] and page.has_more
    page = await store.read(b, page.entries[0].id, 10)
    assert [e.draft.body for e in page.entries] == ["two"] and not page.has_more
    assert await store.head(b) == second.positions[b]
    replay = await store.append(_batch(gen, (a, b), "other body", "k1"))
    assert replay.replayed and replay.receipt == first.receipt and replay.positions == {}
    cid = first.receipt.conversation_id
    assert [m.body for m in await store.history(cid, None, 10)] == ["two", "one"]
    delete = EntryDraft(EntryKind.DELETE, first.receipt.msg_id, cid, a, 1, 0, scope="everyone")
    await store.append(AppendBatch(delete, (a, b)))
    assert [m.body for m in await store.history(cid, None, 10)] == ["two"]
    assert await store.get_message(first.receipt.msg_id) is None
    assert [e.kind for e in await _sync_all(store, a)] == ["message", "message", "delete"]
    await store.ping()


async def test_idempotent_send_racing_on_two_nodes(make_store: StoreFactory) -> None:
    """Invariant 3: the same client_msg_id on two nodes at once makes one message."""
    node_a, node_b = await make_store(), await make_store()
    gen = SnowflakeGenerator(2)
    a, b = _user(), _user()
    results = await asyncio.gather(*(
        node.append(_batch(gen, (a, b), f"try {i}", "same-key"))
        for i, node in enumerate([node_a, node_b, node_a, node_b])
    ))  # fmt: skip
    assert sum(not r.replayed for r in results) == 1
    assert len({r.receipt for r in results}) == 1
    assert len(await _sync_all(node_b, b)) == 1


WRITER = """
import asyncio, json, sys, time
from redis.asyncio import Redis
from idgen.snowflake import SnowflakeGenerator
from inbox.storage.cql_session import CqlSession
from inbox.messages.log_redis import RedisInboxLog
from inbox.core.models import AppendBatch, EntryDraft, EntryKind
from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox
from inbox.messages.store_hybrid import HybridInboxStore

async def main(redis_url, contact, keyspace, user, count, skew_ms):
    cql = await CqlSession.connect([contact], keyspace, statements=INBOX_STATEMENTS, migrate=False)
    redis = Redis.from_url(redis_url)
    store = HybridInboxStore(RedisInboxLog(redis, skew_ms=200), CassandraInbox(cql),
                             pending_ttl_ms=1000)
    gen = SnowflakeGenerator(900)
    acked = []
    for i in range(count):
        mid = gen.next_id() + (skew_ms << 22)  # this process's clock runs ahead
        draft = EntryDraft(EntryKind.MESSAGE, mid, "g:1", 3, 3, 0, f"proc-{i}")
        acked.append((await store.append(AppendBatch(draft, (user,)))).positions[user])
    print(json.dumps(acked))
    await redis.aclose()
    await cql.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                 int(sys.argv[6])))
"""


async def test_invariant1_concurrent_nodes_and_processes(
    make_store: StoreFactory, cassandra_server: Any, redis_server: Any, keyspace: str
) -> None:
    """Invariant 1: writers on two in-process nodes and one OS process, with skewed clocks,
    while a reader pages with limit 3: every entry exactly once, in order."""
    user = _user()
    nodes = [await make_store() for _ in range(2)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, redis_server.url, cassandra_server.contact_point,
        keyspace, str(user), "40", "300", stdout=subprocess.PIPE,
    )  # fmt: skip
    acked: list[int] = []
    done = asyncio.Event()

    async def writer(node: HybridInboxStore, worker: int, skew_ms: int) -> None:
        gen = SnowflakeGenerator(worker)
        for i in range(40):
            mid = gen.next_id() + (skew_ms << 22)
            draft = EntryDraft(EntryKind.MESSAGE, mid, "g:1", worker, 1, 0, f"n{worker}-{i}")
            acked.append((await node.append(AppendBatch(draft, (user,)))).positions[user])

    async def reader() -> list[int]:
        seen: list[int] = []
        after = 0
        while not done.is_set() or (await nodes[1].read(user, after, 3)).entries:
            page = await nodes[1].read(user, after, 3)
            seen += [e.id for e in page.entries]
            after = seen[-1] if seen else 0
            await asyncio.sleep(0.001)
        return seen

    reading = asyncio.create_task(reader())
    await asyncio.gather(writer(nodes[0], 11, -400), writer(nodes[1], 12, 250))
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    acked += json.loads(out)
    done.set()
    seen = await reading
    assert len(seen) == len(set(seen)) == 120
    assert seen == sorted(seen) and set(seen) == set(acked)


async def test_abandoned_reservation_is_fenced(make_store: StoreFactory) -> None:
    """A writer that dies between reserve and commit stalls readers at most pending_ttl, and
    its entry never appears, even when its Cassandra write lands late."""
    store = await make_store()
    gen = SnowflakeGenerator(3)
    user = _user()
    first = await store.append(_batch(gen, (user,), "before"))
    dead = _batch(gen, (user,), "dead")
    fields = {"e": draft_to_json(dead.draft)}
    res = await store.log.reserve((user,), dead.draft.msg_id, TTL_MS, fields)
    assert isinstance(res, Reservation)
    after = await store.append(_batch(gen, (user,), "after"))
    cursor = first.positions[user]
    assert (await store.read(user, cursor, 10)).entries == []  # stalled behind the pending one
    started = time.monotonic()
    while not (await store.read(user, cursor, 10)).entries:  # noqa: ASYNC110 - polling a store
        await asyncio.sleep(0.05)
    assert time.monotonic() - started <= TTL_MS / 1000 + 0.5
    late = DurableAppend(dead.draft, res.positions, dead.message)
    await store.durable.write(late, None, res.deadline_ms * 1000)  # the late write lands
    bodies = [e.draft.body for e in await _sync_all(store, user)]
    assert bodies == ["before", "after"]
    assert after.positions[user] > res.positions[user]


async def test_trimmed_stream_falls_back_to_cassandra(make_store: StoreFactory) -> None:
    store = await make_store(maxlen=10)
    gen = SnowflakeGenerator(4)
    user = _user()
    for i in range(250):
        await store.append(_batch(gen, (user,), f"m{i}"))
    state = await store.log.state(user, 0, 1)
    assert state.floor > 0  # the stream no longer holds the beginning
    entries = await _sync_all(store, user, limit=7)
    assert [e.draft.body for e in entries] == [f"m{i}" for i in range(250)]


async def test_redis_restart_empty_keeps_acked_entries(
    make_store: StoreFactory, fresh_redis_server: Any
) -> None:
    """Invariant 2 and 1 across a Redis data loss: all acked entries sync once, in order, and
    new positions are above the old ones."""
    store = await make_store(fresh_redis_server.url)
    gen = SnowflakeGenerator(5)
    user, peer = _user(), _user()
    old = [(await store.append(_batch(gen, (user, peer), f"old{i}"))).positions[user]
           for i in range(10)]  # fmt: skip
    fresh_redis_server.restart_empty()
    store = await make_store(fresh_redis_server.url)
    new = [(await store.append(_batch(gen, (user, peer), f"new{i}"))).positions[user]
           for i in range(5)]  # fmt: skip
    assert min(new) > max(old)
    entries = await _sync_all(store, user)
    assert [e.id for e in entries] == old + new


async def test_retry_after_redis_lost_its_data_replays_from_cassandra(
    make_store: StoreFactory, fresh_redis_server: Any
) -> None:
    """Invariant 3 without Redis' receipt: the durable one answers the retry, nothing is
    appended twice."""
    store = await make_store(fresh_redis_server.url)
    gen = SnowflakeGenerator(8)
    user, peer = _user(), _user()
    first = await store.append(_batch(gen, (user, peer), "once", key="k1"))
    fresh_redis_server.restart_empty()
    store = await make_store(fresh_redis_server.url)
    retry = await store.append(_batch(gen, (user, peer), "once, again", key="k1"))
    assert retry.replayed and retry.receipt == first.receipt
    for uid in (user, peer):
        assert [e.draft.body for e in await _sync_all(store, uid)] == ["once"]


async def test_retry_is_not_answered_from_a_receipt_that_never_committed(
    make_store: StoreFactory,
) -> None:
    """Invariants 2 and 3: an attempt that wrote everything (its receipt too) and died before
    committing must not make its retry a "replay": readers fence that attempt away. The retry
    waits while the attempt could still commit (503), then fences it and stores the message."""
    store = await make_store()
    gen = SnowflakeGenerator(9)
    user, peer = _user(), _user()
    await store.append(_batch(gen, (user, peer), "before"))  # seeds both sequencers
    dead = _batch(gen, (user, peer), "hello", key="k1")
    fields = {"e": draft_to_json(dead.draft), "k": json.dumps([user, "k1"])}
    res = await store.log.reserve((user, peer), dead.draft.msg_id, TTL_MS, fields)
    assert isinstance(res, Reservation)
    draft = dead.draft  # the attempt's own receipt, as it writes it
    receipt = SendReceipt(draft.msg_id, res.positions[user], draft.conversation_id,
                          draft.created_at_ms)
    await store.durable.write(DurableAppend(dead.draft, res.positions, dead.message,
                                            dead.idempotency_key),
                              receipt, res.deadline_ms * 1000)  # fmt: skip
    with pytest.raises(Unavailable, match="still being stored"):
        await store.append(_batch(gen, (user, peer), "hello", key="k1"))
    await asyncio.sleep(TTL_MS / 1000 + 0.2)
    retry = await store.append(_batch(gen, (user, peer), "hello", key="k1"))
    assert not retry.replayed and retry.receipt != receipt
    for uid in (user, peer):
        assert [e.draft.body for e in await _sync_all(store, uid)] == ["before", "hello"]
    assert (await store.append(_batch(gen, (user, peer), "hello", key="k1"))).replayed


async def test_redis_down_reads_from_cassandra_and_sends_fail(
    make_store: StoreFactory, fresh_redis_server: Any
) -> None:
    store = await make_store(fresh_redis_server.url)
    gen = SnowflakeGenerator(6)
    user = _user()
    acked = [(await store.append(_batch(gen, (user,), f"m{i}"))).positions[user]
             for i in range(5)]  # fmt: skip
    fresh_redis_server.kill()
    with pytest.raises(Unavailable):
        await store.append(_batch(gen, (user,), "lost"))
    await asyncio.sleep((TTL_MS + SKEW_MS) / 1000 + 0.1)  # the time-safe mark passes them
    assert [e.id for e in await _sync_all(store, user)] == acked
    assert await store.head(user) == acked[-1]
    with pytest.raises(Unavailable, match="Redis"):
        await store.ping()


async def test_cassandra_down_fails_cleanly_without_gap(
    make_store: StoreFactory, own_cassandra_server: Any, fresh_redis_server: Any
) -> None:
    """Cassandra stopped: sends are 503; once it is back, nothing half-written shows up."""
    ks = unique_keyspace("outage")
    store = await make_store(fresh_redis_server.url, own_cassandra_server.contact_point, ks=ks)
    gen = SnowflakeGenerator(7)
    user = _user()
    first = await store.append(_batch(gen, (user,), "first"))
    own_cassandra_server.stop()
    try:
        with pytest.raises(Unavailable):
            await store.append(_batch(gen, (user,), "failed"))
        page = await store.read(user, 0, 10)  # Redis still serves what is committed
        assert [e.draft.body for e in page.entries] == ["first"]
    finally:
        own_cassandra_server.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            third = await store.append(_batch(gen, (user,), "third"))
            break
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    # failed attempts left pending marks behind; readers fence them once they expire
    stalled_until = time.monotonic() + TTL_MS / 1000 + 1
    while len(entries := await _sync_all(store, user)) < 2 and time.monotonic() < stalled_until:
        assert [e.draft.body for e in entries] == ["first"]
        await asyncio.sleep(0.05)
    assert [e.draft.body for e in entries] == ["first", "third"]
    assert [e.id for e in entries] == [first.positions[user], third.positions[user]]
