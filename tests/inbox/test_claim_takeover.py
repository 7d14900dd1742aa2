"""A send attempt that died holding its idempotency claim (its node was killed): its retry
is answered promptly (503 with ``Retry-After`` while the claim lives), then takes the key
over and stores the message once, against real Redis and Cassandra."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from idgen.snowflake import SnowflakeGenerator
from inbox.core.errors import Unavailable
from inbox.core.models import AppendBatch, EntryDraft, EntryKind, Message, SendReceipt
from inbox.messages.append_protocol import BUSY_WAIT_S
from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox, DurableAppend
from inbox.messages.log_redis import (
    Busy,
    Claim,
    RedisInboxLog,
    Reservation,
    ReserveRequest,
    entry_fields,
    idem_key,
    receipt_json,
)
from inbox.messages.store_hybrid import HybridInboxStore
from inbox.storage.cql_session import CqlSession

TTL_MS = 1000
"""The stores' pending TTL: a claim lives TTL_MS + the 1 s margin."""


@pytest.fixture
async def store(cassandra_server: Any, redis_server: Any, keyspace: str
                ) -> AsyncIterator[HybridInboxStore]:
    redis = Redis.from_url(redis_server.url, socket_timeout=2)
    cql = await CqlSession.connect([cassandra_server.contact_point], keyspace,
                                   statements=INBOX_STATEMENTS, request_timeout=2.0)
    yield HybridInboxStore(RedisInboxLog(redis, skew_ms=200), CassandraInbox(cql),
                           pending_ttl_ms=TTL_MS)
    await redis.aclose()
    await cql.close()


def _batch(gen: SnowflakeGenerator, users: tuple[int, int], body: str, key: str
           ) -> AppendBatch:
    mid = gen.next_id()
    cid = f"d:{min(users)}:{max(users)}"
    draft = EntryDraft(EntryKind.MESSAGE, mid, cid, users[0], 1, int(time.time() * 1000), body)
    message = Message(mid, cid, users[0], 1, body, draft.created_at_ms)
    return AppendBatch(draft, users, message, (users[0], key), users[0])


async def _bodies(store: HybridInboxStore, user: int) -> list[str | None]:
    page = await store.read(user, 0, 100)
    return [e.draft.body for e in page.entries]


async def _dead_attempt(store: HybridInboxStore, batch: AppendBatch, *, wrote: bool
                        ) -> tuple[Claim, Reservation]:
    """What a send leaves behind when its node is killed after reserving (and, if
    ``wrote``, after writing its rows and receipt to Cassandra): a claim and pending marks."""
    assert batch.idempotency_key is not None
    claim = Claim(idem_key(*batch.idempotency_key), "p:dead")
    request = ReserveRequest(batch.user_ids, batch.draft.msg_id,
                             entry_fields(batch.draft, batch.message, batch.idempotency_key),
                             claim)
    found = await store.log.reserve_all([request], TTL_MS, store.timing.claim_ttl_ms)
    assert isinstance(found, list) and isinstance(found[0], Reservation)
    res = found[0]
    if wrote:
        draft = batch.draft
        receipt = SendReceipt(draft.msg_id, res.positions[draft.sender_id],
                              draft.conversation_id, draft.created_at_ms)
        await store.durable.write(DurableAppend(draft, res.positions, batch.message,
                                                batch.idempotency_key),
                                  receipt, res.deadline_ms * 1000)
    return claim, res


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        return await call(), time.monotonic() - started
    except Unavailable as exc:
        return exc, time.monotonic() - started


@pytest.mark.parametrize("wrote", [False, True], ids=["before-writing", "after-writing"])
async def test_a_retry_of_a_dead_attempt_is_told_when_to_retry_then_takes_the_key_over(
    store: HybridInboxStore, wrote: bool
) -> None:
    gen = SnowflakeGenerator(21)
    user, peer = random.randrange(10**12, 10**15), random.randrange(10**12, 10**15)
    await store.append(_batch(gen, (user, peer), "before", "k0"))  # seeds both inboxes
    await _dead_attempt(store, _batch(gen, (user, peer), "hello", "k1"), wrote=wrote)

    refused, took = await _timed(lambda: store.append(_batch(gen, (user, peer), "hello", "k1")))
    assert isinstance(refused, Unavailable) and refused.retry_after_s is not None
    assert took < BUSY_WAIT_S + 0.5
    assert 0 < refused.retry_after_s <= store.timing.claim_ttl_ms / 1000 - BUSY_WAIT_S + 0.1
    await asyncio.sleep(refused.retry_after_s)
    stored = await store.append(_batch(gen, (user, peer), "hello", "k1"))
    assert not stored.replayed
    replay = await store.append(_batch(gen, (user, peer), "hello", "k1"))
    assert replay.replayed and replay.receipt == stored.receipt
    for uid in (user, peer):
        assert await _bodies(store, uid) == ["before", "hello"]


async def test_a_taken_over_attempt_cannot_commit_even_within_its_deadline(
    store: HybridInboxStore,
) -> None:
    """Should Redis' clock step back, the old attempt's deadline could seem not to have
    passed: COMMIT refuses anyway once another attempt's claim holds the key."""
    gen = SnowflakeGenerator(22)
    user, peer = random.randrange(10**12, 10**15), random.randrange(10**12, 10**15)
    await store.append(_batch(gen, (user, peer), "before", "k0"))
    batch = _batch(gen, (user, peer), "hello", "k1")
    claim, res = await _dead_attempt(store, batch, wrote=False)
    await store.log.redis.set(claim.key, "p:another-attempt", px=5000)
    assert batch.draft.sender_id == user
    receipt = SendReceipt(batch.draft.msg_id, res.positions[user], batch.draft.conversation_id,
                          batch.draft.created_at_ms)
    cache = (claim.key, receipt_json(receipt), 60_000)
    assert await store.log.commit(res, cache, claim) == "expired"
    assert await store.log.redis.get(claim.key) == b"p:another-attempt"
    await store.log.redis.set(claim.key, claim.token, px=5000)  # ours again: it commits
    assert await store.log.commit(res, cache, claim) == "ok"


async def test_a_busy_key_says_when_its_claim_expires(store: HybridInboxStore) -> None:
    gen = SnowflakeGenerator(23)
    user, peer = random.randrange(10**12, 10**15), random.randrange(10**12, 10**15)
    await store.append(_batch(gen, (user, peer), "before", "k0"))
    batch = _batch(gen, (user, peer), "hello", "k1")
    claim, _ = await _dead_attempt(store, batch, wrote=False)
    again = ReserveRequest(batch.user_ids, gen.next_id(), {"e": json.dumps("x")},
                           Claim(claim.key, "p:retry"))
    found = await store.log.reserve_all([again], TTL_MS, store.timing.claim_ttl_ms)
    assert isinstance(found, list) and isinstance(found[0], Busy)
    assert 0 < found[0].wait_ms <= store.timing.claim_ttl_ms
    assert abs(found[0].wait_ms - await store.log.redis.pttl(claim.key)) < 50
