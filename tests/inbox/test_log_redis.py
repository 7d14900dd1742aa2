"""The Redis inbox log and sequencer scripts against a real Redis."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from idgen.snowflake import MAX_ID, min_id_for_ms
from inbox.core.models import EntryDraft, EntryKind
from inbox.messages.log_redis import (
    NeedsSeed,
    Recovering,
    RedisInboxLog,
    Reservation,
    draft_from_json,
    draft_to_json,
    meta_key,
    stream_key,
)


@pytest.fixture
async def log(redis_server) -> AsyncIterator[RedisInboxLog]:  # type: ignore[no-untyped-def]
    client = Redis.from_url(redis_server.url)
    yield RedisInboxLog(client, maxlen=100, skew_ms=100)
    await client.aclose()


def _users(n: int) -> list[int]:
    base = random.randrange(10**12, 10**13)
    return [base + i for i in range(n)]


async def _seed_all(log: RedisInboxLog, users: list[int], head: int = 0) -> None:
    now = await log.time_ms()
    for uid in users:
        assert await log.seed(uid, head, 0, 0, 0, now, 5000, "era-1") == 1


def test_draft_json_round_trip() -> None:
    draft = EntryDraft(EntryKind.GROUP_EVENT, 5, "g:1", 2, 3, 4, body="ü", scope="me",
                       group={"group_id": "1", "member_ids": ["2"]})  # fmt: skip
    assert draft_from_json(draft_to_json(draft)) == draft


async def test_reserve_needs_seed_then_assigns_positions(log: RedisInboxLog) -> None:
    users = _users(2)
    mid = min_id_for_ms(int(time.time() * 1000))
    assert await log.reserve(users, mid, 1000, {"e": "x"}) == NeedsSeed(users)
    await _seed_all(log, users[:1])
    assert await log.reserve(users, mid, 1000, {"e": "x"}) == NeedsSeed(users[1:])
    await _seed_all(log, users[1:])
    first = await log.reserve(users, mid, 1000, {"e": "x"})
    assert isinstance(first, Reservation)
    assert first.positions == {users[0]: mid, users[1]: mid}
    assert first.previous == {users[0]: 0, users[1]: 0}
    second = await log.reserve(users, mid - 10, 1000, {"e": "y"})  # an older id: head + 1
    assert isinstance(second, Reservation)
    assert second.positions == {u: mid + 1 for u in users}
    assert second.previous == {u: mid for u in users}
    assert await log.commit(first, None) == "ok"
    assert await log.commit(second, None) == "ok"
    state = await log.state(users[0], 0, 10)
    assert [p for p, _ in state.entries] == [mid, mid + 1] and state.pending == []


async def test_positions_near_2_63_stay_exact(log: RedisInboxLog) -> None:
    [uid] = _users(1)
    await _seed_all(log, [uid], head=MAX_ID - 5)
    res = await log.reserve([uid], 1, 1000, {"e": "x"})
    assert isinstance(res, Reservation) and res.positions[uid] == MAX_ID - 4


async def test_fan_out_is_one_round_trip(log: RedisInboxLog) -> None:
    users = _users(100)
    await _seed_all(log, users)
    before = await log.redis.info("commandstats")
    res = await log.reserve(users, min_id_for_ms(int(time.time() * 1000)), 1000, {"e": "x"})
    after = await log.redis.info("commandstats")
    assert isinstance(res, Reservation) and len(set(res.positions.values())) == 1
    calls = {k: after[k]["calls"] - before.get(k, {"calls": 0})["calls"]
             for k in after if k.startswith("cmdstat_eval")}  # fmt: skip
    assert sum(calls.values()) == 1, calls


async def test_commit_expired_and_lost(log: RedisInboxLog) -> None:
    users = _users(2)
    await _seed_all(log, users)
    mid = min_id_for_ms(int(time.time() * 1000))
    res = await log.reserve(users, mid, 1, {"e": "x"})  # 1 ms to live
    assert isinstance(res, Reservation)
    await asyncio.sleep(0.01)
    assert await log.commit(res, None) == "expired"
    state = await log.state(users[0], 0, 10)
    assert state.pending and state.pending[0][0] == mid and state.pending[0][1] < state.now_ms
    await log.abort(res.positions, res.deadline_ms)
    state = await log.state(users[0], 0, 10)
    assert state.pending == [] and state.entries == []
    res = await log.reserve(users, mid, 1000, {"e": "x"})
    assert isinstance(res, Reservation)
    await log.redis.delete(*(meta_key(u) for u in users), *(f"inbox:pending:{{u:{u}}}"
                                                           for u in users))  # fmt: skip
    assert await log.commit(res, None) == "lost"


async def test_recovering_inbox_waits(log: RedisInboxLog) -> None:
    [uid] = _users(1)
    now = await log.time_ms()
    assert await log.seed(uid, 10, 0, 10, now + 60_000, now, 5000, "era") == 1
    assert await log.seed(uid, 99, 0, 99, 0, now, 5000, "era") == 0  # already seeded
    res = await log.reserve([uid], 5, 1000, {"e": "x"})
    assert isinstance(res, Recovering) and 0 < res.wait_ms <= 60_000
    assert await log.seed(_users(1)[0], 1, 0, 0, 0, now - 10_000, 5000, "e") == -1  # stale


async def test_trim_raises_the_floor(log: RedisInboxLog) -> None:
    [uid] = _users(1)
    await _seed_all(log, [uid])
    mid = min_id_for_ms(int(time.time() * 1000))
    for _ in range(400):
        res = await log.reserve([uid], mid, 1000, {"e": "x"})
        assert isinstance(res, Reservation)
        await log.commit(res, None)
    state = await log.state(uid, 0, 1)
    assert await log.redis.xlen(stream_key(uid)) < 400
    assert state.floor >= mid and state.entries[0][0] == state.floor + 1


async def test_commit_is_all_or_nothing_when_a_mark_is_gone(log: RedisInboxLog) -> None:
    users = _users(3)
    await _seed_all(log, users)
    mid = min_id_for_ms(int(time.time() * 1000))
    res = await log.reserve(users, mid, 5000, {"e": "x"})
    assert isinstance(res, Reservation)
    # One inbox's mark vanished (as if fenced): the commit must clear none of the others.
    await log.redis.hdel(meta_key(users[1]), f"p:{res.positions[users[1]]}")
    assert await log.commit(res, ("idem:{u:1}:x", "r:1", 1000)) == "expired"
    assert await log.redis.get("idem:{u:1}:x") is None
    for uid in (users[0], users[2]):
        state = await log.state(uid, 0, 10)
        assert state.pending == [(res.positions[uid], res.deadline_ms)]


async def test_positions_carry_across_digits(log: RedisInboxLog) -> None:
    [uid] = _users(1)
    await _seed_all(log, [uid], head=10**18 - 1)  # above any time floor: head + 1 wins
    res = await log.reserve([uid], 1, 1000, {"e": "x"})
    assert isinstance(res, Reservation) and res.positions[uid] == 10**18
    assert res.previous[uid] == 0  # the seeded ``last``
    assert await log.commit(res, None) == "ok"
    state = await log.state(uid, 10**18 - 1, 10)
    assert state.head == 10**18 and [p for p, _ in state.entries] == [10**18]


async def test_pipelined_reserves_and_commits_keep_list_order(log: RedisInboxLog) -> None:
    users = _users(5)
    await _seed_all(log, users)
    mid = min_id_for_ms(int(time.time() * 1000))
    reserved = await log.reserve_many([(users, mid, {"e": f"m{i}"}) for i in range(4)], 5000)
    assert all(isinstance(r, Reservation) for r in reserved)
    positions = [r.positions[users[0]] for r in reserved if isinstance(r, Reservation)]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert await log.commit_many([r for r in reserved if isinstance(r, Reservation)]) == ["ok"] * 4
    state = await log.state(users[4], 0, 10)
    assert [f["e"] for _, f in state.entries] == ["m0", "m1", "m2", "m3"] and state.pending == []


async def test_abort_drops_only_its_own_mark(log: RedisInboxLog) -> None:
    [uid] = _users(1)
    await _seed_all(log, [uid])
    mid = min_id_for_ms(int(time.time() * 1000))
    res = await log.reserve([uid], mid, 5000, {"e": "x"})
    assert isinstance(res, Reservation)
    await log.abort(res.positions, res.deadline_ms + 1)  # another reservation's deadline
    assert (await log.state(uid, 0, 10)).pending == [(res.positions[uid], res.deadline_ms)]
    await log.abort(res.positions, res.deadline_ms)
    state = await log.state(uid, 0, 10)
    assert state.pending == [] and state.entries == []
