"""The Redis worker-id lease against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from idgen.lease import LeaseLostError, LeaseUnavailableError
from idgen.lease_redis import WORKER_IDS, RedisWorkerLease, worker_key
from tests.servers.fixtures import RedisEndpoint, fresh_redis_server, redis_server  # noqa: F401
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.asyncio


async def clear_leases(client: Redis) -> None:
    keys = [key async for key in client.scan_iter(match="idgen:worker:*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest_asyncio.fixture
async def client(redis_server: RedisEndpoint) -> AsyncIterator[Redis]:  # noqa: F811
    redis = Redis.from_url(redis_server.url)
    await clear_leases(redis)
    yield redis
    await clear_leases(redis)
    await redis.aclose()


async def holder(client: Redis, worker_id: int) -> str | None:
    """The value of worker id ``worker_id``'s lease key: ``<token>:<node>``, or None."""
    raw = await client.get(worker_key(worker_id))
    if raw is None or isinstance(raw, str):
        return raw
    return raw.decode()


async def take_all_but(client: Redis, free: set[int]) -> None:
    """Lease every worker id except ``free`` to some other node."""
    async with client.pipeline(transaction=False) as pipe:
        for worker_id in range(WORKER_IDS):
            if worker_id not in free:
                pipe.set(worker_key(worker_id), "other-token:node-x", px=60_000)
        await pipe.execute()


async def test_two_leases_get_different_worker_ids(client: Redis) -> None:
    a = RedisWorkerLease(client, "node-a")
    b = RedisWorkerLease(client, "node-b")
    id_a, id_b = await a.acquire(), await b.acquire()
    assert id_a != id_b
    assert (a.worker_id, b.worker_id) == (id_a, id_b)
    value_a = await holder(client, id_a)
    assert value_a is not None and value_a.endswith(":node-a")
    token = value_a.removesuffix(":node-a")
    assert len(token) == 32 and int(token, 16) >= 0  # random 128-bit token
    assert 29_000 < await client.pttl(worker_key(id_a)) <= 30_000
    assert worker_key(id_a) == f"idgen:worker:{{{id_a}}}"


async def test_many_leases_never_share_an_id(client: Redis) -> None:
    leases = [RedisWorkerLease(client, f"node-{n}") for n in range(50)]
    ids = [await lease.acquire() for lease in leases]
    assert len(set(ids)) == 50
    assert all(0 <= i < WORKER_IDS for i in ids)


async def test_all_1024_taken_is_unavailable(client: Redis) -> None:
    await take_all_but(client, free=set())
    lease = RedisWorkerLease(client, "node-late")
    with pytest.raises(LeaseUnavailableError, match="all 1024 worker ids are leased"):
        await lease.acquire()
    with pytest.raises(RuntimeError, match="not held"):
        _ = lease.worker_id
    assert await holder(client, 0) == "other-token:node-x"


@pytest.mark.parametrize("free", [0, 517, 1023])
async def test_the_scan_finds_the_only_free_id_wherever_it_starts(client: Redis, free: int) -> None:
    await take_all_but(client, free={free})
    for attempt in range(3):  # random start offsets; the scan wraps around
        lease = RedisWorkerLease(client, f"node-{attempt}")
        assert await lease.acquire() == free
        await lease.release()


async def test_renew_pushes_the_expiry_forward(client: Redis) -> None:
    lease = RedisWorkerLease(client, "node-a", ttl_ms=5000)
    worker_id = await lease.acquire()
    await client.pexpire(worker_key(worker_id), 100)
    await lease.renew()
    assert 4000 < await client.pttl(worker_key(worker_id)) <= 5000


async def test_renew_after_expiry_and_takeover_is_lost(client: Redis) -> None:
    lease = RedisWorkerLease(client, "node-a", ttl_ms=30)
    worker_id = await lease.acquire()
    await asyncio.sleep(0.08)  # the key expires
    assert await client.set(worker_key(worker_id), "their-token:node-b", nx=True, px=60_000)

    with pytest.raises(LeaseLostError, match=f"worker id {worker_id} .* expired or is now"):
        await lease.renew()

    assert await holder(client, worker_id) == "their-token:node-b"
    assert await client.pttl(worker_key(worker_id)) > 30_000, "their TTL was not touched"
    with pytest.raises(RuntimeError, match="not held"):
        _ = lease.worker_id
    with pytest.raises(LeaseLostError):
        await lease.renew()


async def test_renew_after_plain_expiry_is_lost_and_does_not_recreate_the_key(
    client: Redis,
) -> None:
    lease = RedisWorkerLease(client, "node-a", ttl_ms=30)
    worker_id = await lease.acquire()
    await asyncio.sleep(0.08)
    with pytest.raises(LeaseLostError):
        await lease.renew()
    assert await client.exists(worker_key(worker_id)) == 0


async def test_renew_sets_a_vanished_key_again_while_the_lease_is_valid(client: Redis) -> None:
    """Redis restarted empty: the key is gone though our lease has not run out; nobody else
    can have held it since, so the renewal takes it back instead of losing it."""
    lease = RedisWorkerLease(client, "node-a", ttl_ms=5000)
    worker_id = await lease.acquire()
    value = await holder(client, worker_id)
    await client.delete(worker_key(worker_id))
    await lease.renew()
    assert await holder(client, worker_id) == value
    assert 4000 < await client.pttl(worker_key(worker_id)) <= 5000
    assert lease.worker_id == worker_id


async def test_retake_after_a_loss_takes_our_id_back_only_if_no_one_holds_it(
    client: Redis,
) -> None:
    lease = RedisWorkerLease(client, "node-a", ttl_ms=30)
    worker_id = await lease.acquire()
    value = await holder(client, worker_id)
    await asyncio.sleep(0.08)  # past our deadline: the renewal may not re-create it
    with pytest.raises(LeaseLostError):
        await lease.renew()
    assert await lease.retake()  # absent: ours again, with the same token
    assert lease.worker_id == worker_id and await holder(client, worker_id) == value
    await asyncio.sleep(0.08)
    with pytest.raises(LeaseLostError):
        await lease.renew()
    await client.set(worker_key(worker_id), "their-token:node-b", px=60_000)
    assert not await lease.retake()
    assert await holder(client, worker_id) == "their-token:node-b"
    assert not await lease.retake()  # that id is forgotten: a new one must be acquired
    with pytest.raises(RuntimeError, match="not held"):
        _ = lease.worker_id


async def test_release_deletes_our_key(client: Redis) -> None:
    lease = RedisWorkerLease(client, "node-a")
    worker_id = await lease.acquire()
    await lease.release()
    assert await client.exists(worker_key(worker_id)) == 0
    await lease.release()  # idempotent
    with pytest.raises(RuntimeError, match="not held"):
        _ = lease.worker_id


async def test_release_leaves_another_holders_key_alone(client: Redis) -> None:
    lease = RedisWorkerLease(client, "node-a")
    worker_id = await lease.acquire()
    # our lease expired and node-b took the id meanwhile
    await client.set(worker_key(worker_id), "their-token:node-b", px=60_000)
    await lease.release()
    assert await holder(client, worker_id) == "their-token:node-b"


async def test_misuse_is_reported(client: Redis) -> None:
    with pytest.raises(ValueError, match="node_name"):
        RedisWorkerLease(client, "")
    with pytest.raises(ValueError, match="ttl_ms"):
        RedisWorkerLease(client, "node-a", ttl_ms=0)
    lease = RedisWorkerLease(client, "node-a")
    with pytest.raises(LeaseLostError, match="not held"):
        await lease.renew()
    await lease.acquire()
    with pytest.raises(RuntimeError, match="already held"):
        await lease.acquire()


async def test_run_renewal_keeps_the_lease_past_its_ttl_until_cancelled(client: Redis) -> None:
    lease = RedisWorkerLease(client, "node-a", ttl_ms=150)
    worker_id = await lease.acquire()
    value = await holder(client, worker_id)
    lost: list[bool] = []
    task = asyncio.create_task(lease.run_renewal(lambda: lost.append(True)))

    await asyncio.sleep(0.6)  # four TTLs

    assert not task.done() and lost == []
    assert await holder(client, worker_id) == value
    assert lease.worker_id == worker_id
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await lease.release()
    assert await client.exists(worker_key(worker_id)) == 0


async def test_run_renewal_reports_a_takeover_and_returns(client: Redis) -> None:
    lease = RedisWorkerLease(client, "node-a", ttl_ms=150)
    worker_id = await lease.acquire()
    lost: list[bool] = []
    task = asyncio.create_task(lease.run_renewal(lambda: lost.append(True)))
    await client.set(worker_key(worker_id), "their-token:node-b", px=60_000)

    await asyncio.wait_for(task, timeout=1.0)  # returns by itself within one interval

    assert lost == [True]
    assert await holder(client, worker_id) == "their-token:node-b"


async def test_run_renewal_gives_up_when_redis_is_down_past_the_ttl(
    fresh_redis_server: RedisServer,  # noqa: F811
) -> None:
    redis = Redis.from_url(fresh_redis_server.url, socket_connect_timeout=0.2)
    lease = RedisWorkerLease(redis, "node-a", ttl_ms=300)
    await lease.acquire()
    loop = asyncio.get_running_loop()
    lost_at: list[float] = []
    task = asyncio.create_task(lease.run_renewal(lambda: lost_at.append(loop.time())))
    down_at = loop.time()
    fresh_redis_server.kill()

    try:
        await asyncio.wait_for(task, timeout=2.0)
    finally:
        await redis.aclose()

    assert len(lost_at) == 1
    # The local deadline is 0.295 s after the last renewal was sent (the key lives 0.3 s);
    # 0.1 s more for the event loop's scheduling on a busy 2-core box.
    assert lost_at[0] - down_at < 0.4, "must stop at the lease deadline"
    with pytest.raises(RuntimeError, match="not held"):
        _ = lease.worker_id


async def test_run_renewal_gives_up_when_redis_hangs_past_the_ttl(
    fresh_redis_server: RedisServer,  # noqa: F811
) -> None:
    redis = Redis.from_url(fresh_redis_server.url)
    admin = Redis.from_url(fresh_redis_server.url)
    lease = RedisWorkerLease(redis, "node-a", ttl_ms=300)
    await lease.acquire()
    loop = asyncio.get_running_loop()
    lost_at: list[float] = []
    task = asyncio.create_task(lease.run_renewal(lambda: lost_at.append(loop.time())))
    # Writes (the renewal script too) now hang. Not ALL: redis 7.0 would block UNPAUSE as well.
    await admin.client_pause(5000, all=False)
    paused_at = loop.time()
    try:
        await asyncio.wait_for(task, timeout=2.0)
    finally:
        await admin.client_unpause()
        await redis.aclose()
        await admin.aclose()

    assert len(lost_at) == 1
    # At the lease deadline (<= 0.3 s after the pause; 0.1 s for scheduling on a busy box),
    # not when the 5 s pause ends.
    assert lost_at[0] - paused_at < 0.4, "the hanging renewal must be abandoned at the deadline"
