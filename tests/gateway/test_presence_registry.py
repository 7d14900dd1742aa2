"""The live bus's connection registry as presence uses it, on both buses.

``LocalLiveBus`` (one process: every "node" is the same bus) and ``RedisLiveBus`` (one bus
per node, each with its own client, over a real Redis) must agree on when a user came online
and went offline, also under concurrent connects and disconnects on several nodes. Redis
only: registrations of a node that died expire and are reported within the bound that keeps
invariant 6 (offline within 3 heartbeat intervals).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.bus import LiveBus, LocalLiveBus
from gateway.bus_redis import NODES_KEY, RedisLiveBus, alive_key, registry_ttl_s
from inbox.core.errors import Unavailable

NodeFactory = Callable[..., Awaitable[Any]]
TTL_S = 0.6  # two heartbeat intervals of 0.3 s
REGISTRY_REDIS_DB = 7


def _user() -> int:
    return random.randrange(10**12, 10**15)


@pytest.fixture
async def redis_node(redis_server: Any) -> AsyncIterator[NodeFactory]:
    """``await redis_node()`` starts a Redis bus as one more gateway node.

    In a Redis database of this module's own: a bus of another test (sharing the server)
    must not win the sweep of a node killed here and report its users to nobody.
    """
    url = f"redis://{redis_server.host}:{redis_server.port}/{REGISTRY_REDIS_DB}"
    started: list[tuple[RedisLiveBus, Redis]] = []

    async def start(node_id: str | None = None) -> RedisLiveBus:
        client = Redis.from_url(url)
        bus = RedisLiveBus(client, node_id or f"n{random.randrange(10**9)}", ttl_s=TTL_S)
        await bus.start()
        started.append((bus, client))
        return bus

    yield start
    for bus, client in started:
        await bus.close()
        await client.aclose()


@pytest.fixture(params=["local", "redis"])
def node(request: pytest.FixtureRequest) -> NodeFactory:
    """``await node()`` is a bus as one gateway node sees it (local: always the same one)."""
    if request.param == "redis":
        factory: NodeFactory = request.getfixturevalue("redis_node")
        return factory
    bus = LocalLiveBus()  # nothing to start or close: it holds no connection

    async def same_bus(node_id: str = "") -> LiveBus:
        return bus

    return same_bus


async def test_first_connection_comes_online_and_last_goes_offline(node: NodeFactory) -> None:
    a, b = await node(), await node()
    alice = _user()
    assert await a.register(alice, 1) is True
    assert await b.register(alice, 2) is False  # another device, maybe another node
    assert await a.register(alice, 1) is False  # a second socket of the same device
    assert await a.unregister(alice, 1) is False
    assert await a.unregister(alice, 1) is False  # device 2 is still online
    assert await b.online_devices(alice) == {2}
    assert await b.unregister(alice, 2) is True
    assert await a.online_devices(alice) == set()
    assert await a.unregister(alice, 2) is False  # nothing was registered


async def test_online_users_in_one_lookup(node: NodeFactory) -> None:
    a, b = await node(), await node()
    alice, bob, carol = _user(), _user(), _user()
    await a.register(alice, 1)
    await b.register(bob, 2)
    assert await a.online_users([alice, bob, carol, alice]) == {alice, bob}
    assert await a.online_users([]) == set()


async def test_concurrent_first_connections_come_online_once(node: NodeFactory) -> None:
    buses = [await node() for _ in range(4)]
    for _ in range(5):
        alice = _user()
        came = await asyncio.gather(*(bus.register(alice, i) for i, bus in enumerate(buses)))
        assert came.count(True) == 1
        went = await asyncio.gather(*(bus.unregister(alice, i) for i, bus in enumerate(buses)))
        assert went.count(True) == 1


async def test_leftovers_of_an_earlier_run_do_not_hide_a_new_connection(
    redis_node: NodeFactory,
) -> None:
    name = f"restarted{random.randrange(10**9)}"
    first = await redis_node(name)
    alice = _user()
    await first.register(alice, 1)
    _kill(first)
    second = await redis_node(name)  # the same node id, restarted before the fields expired
    assert await second.register(alice, 1) is True


async def test_a_dead_nodes_users_are_reported_offline_within_the_bound(
    redis_node: NodeFactory,
) -> None:
    survivor, doomed, other = await redis_node(), await redis_node(), await redis_node()
    reported: list[tuple[int, set[int], int]] = []

    async def on_expired(user_id: int, devices: set[int], last_seen_ms: int) -> None:
        reported.append((user_id, devices, last_seen_ms))

    survivor.on_expired(on_expired)
    other.on_expired(on_expired)  # whichever live node sweeps first reports the dead one
    alice, bob = _user(), _user()
    await doomed.register(alice, 1)
    await doomed.register(alice, 2)
    await doomed.register(bob, 3)
    await other.register(bob, 4)  # bob stays online through another node
    died_ms = int(time.time() * 1000)
    _kill(doomed)
    elapsed = await _wait_for(lambda: any(u == alice for u, _, _ in reported), 5)
    # the fields outlive the last refresh by TTL_S; a sweep runs every TTL_S / 4
    assert elapsed <= 1.5 * TTL_S + 0.3, elapsed
    mine = [(u, d) for u, d, _ in reported if u in (alice, bob)]
    assert mine == [(alice, {1, 2})]
    last_seen = next(ms for u, _, ms in reported if u == alice)
    # last_seen is "ttl before the sweep found it": at most a sweep period after the death
    assert died_ms - 2000 * TTL_S <= last_seen <= died_ms + 1000 * TTL_S / 4 + 300
    assert await survivor.online_devices(alice) == set()
    assert await survivor.online_devices(bob) == {4}
    assert doomed.node_id not in {m.decode() for m in await survivor._redis.smembers(NODES_KEY)}


async def test_a_live_node_is_never_swept(redis_node: NodeFactory) -> None:
    a, b = await redis_node(), await redis_node()
    reported: list[int] = []

    async def on_expired(user_id: int, devices: set[int], last_seen_ms: int) -> None:
        reported.append(user_id)

    a.on_expired(on_expired)
    alice = _user()
    await b.register(alice, 1)
    await asyncio.sleep(3 * TTL_S)  # several refreshes and sweeps
    await a.sweep()
    assert alice not in reported
    assert await a.online_devices(alice) == {1}
    assert await a._redis.exists(alive_key(b.node_id))


async def test_a_closed_node_leaves_nothing_behind(redis_node: NodeFactory) -> None:
    a, b = await redis_node(), await redis_node()
    alice = _user()
    await b.register(alice, 1)
    await b.close()
    assert await a.online_devices(alice) == set()
    assert not await a._redis.exists(alive_key(b.node_id))


def _kill(bus: RedisLiveBus) -> None:
    """What ``kill -9`` of the node leaves behind: nothing refreshes or cleans up."""
    for task in bus._tasks:
        task.cancel()
    bus._tasks = []


async def _wait_for(check: Callable[[], bool], timeout_s: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - another node's sweep reports it
            await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_registry_ttl_keeps_invariant_6() -> None:
    for interval_ms in (1_000, 30_000):
        ttl_s = registry_ttl_s(interval_ms)
        assert ttl_s + ttl_s / 4 < 3 * interval_ms / 1000  # expiry plus one sweep period


async def test_lookups_answer_unavailable_when_redis_is_down(fresh_redis_server: Any) -> None:
    client = Redis.from_url(fresh_redis_server.url, socket_timeout=2, socket_connect_timeout=2)
    bus = RedisLiveBus(client, f"n{random.randrange(10**9)}", ttl_s=TTL_S)
    await bus.start()
    alice = _user()
    await bus.register(alice, 1)
    fresh_redis_server.kill()
    try:
        with pytest.raises(Unavailable):
            await bus.online_users([alice])
        with pytest.raises(Unavailable):
            await bus.online_devices(alice)
    finally:
        await bus.close()  # tolerates the dead Redis
        await client.aclose()
