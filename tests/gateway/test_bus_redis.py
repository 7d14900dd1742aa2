"""Cross-node live delivery and the connection registry over a real Redis."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from api.stores import open_redis
from gateway.bus_redis import RedisLiveBus
from idgen.clock import SYSTEM_CLOCK
from inbox.core.errors import Unavailable
from tests.servers.redis_server import RedisServer

Received = list[tuple[int, dict[str, Any]]]


class Clock:
    """Hand-driven wall time (Unix ms) for registration expiry; waits are real."""

    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def now_ms(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return self.ms / 1000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def block(self, seconds: float) -> None:
        raise AssertionError("the bus never blocks")


@pytest.fixture
async def nodes(redis_server) -> AsyncIterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    """Start buses (each with its own client, like separate gateway nodes)."""
    started: list[tuple[RedisLiveBus, Redis]] = []

    async def start(node_id: str, clock: Clock | None = None) -> tuple[RedisLiveBus, Received]:
        client = Redis.from_url(redis_server.url)
        bus = RedisLiveBus(client, f"{node_id}-{random.randrange(10**9)}", ttl_s=30,
                           clock=clock or SYSTEM_CLOCK)
        got: Received = []
        bus.subscribe(lambda user_id, event: got.append((user_id, event)))
        await bus.start()
        started.append((bus, client))
        return bus, got

    yield start
    for bus, client in started:
        await bus.close()
        await client.aclose()


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():  # noqa: ASYNC110 - waiting on another node's delivery
            await asyncio.sleep(0.01)


def _user() -> int:
    return random.randrange(10**12, 10**15)


async def test_publish_reaches_only_nodes_holding_the_user(nodes: Callable[..., Any]) -> None:
    (a, got_a), (b, got_b), (c, got_c) = [await nodes(n) for n in ("a", "b", "c")]
    alice, bob = _user(), _user()
    await b.register(alice, 10)
    await c.register(alice, 11)
    await c.register(bob, 20)
    event = {"user_id": str(alice), "entry": {"id": "1", "body": "hi"}}
    await a.publish({alice: [event], bob: [{"user_id": str(bob)}], _user(): [{"x": 1}]})
    await _until(lambda: len(got_b) == 1 and len(got_c) == 2)
    assert got_b == [(alice, event)]
    assert sorted(u for u, _ in got_c) == sorted([alice, bob])
    assert got_a == []
    assert await a.online_devices(alice) == {10, 11}


async def test_own_connections_get_events_at_once_and_never_twice(
    nodes: Callable[..., Any]
) -> None:
    (a, got_a), (b, got_b) = await nodes("a"), await nodes("b")
    alice = _user()
    await a.register(alice, 10)
    await b.register(alice, 11)
    events = [{"n": 1}, {"n": 2}]
    await a.publish({alice: events})
    assert got_a == [(alice, events[0]), (alice, events[1])]  # before publish returned
    await _until(lambda: len(got_b) == 2)
    assert got_b == got_a
    await asyncio.sleep(0.2)  # a node's own channel never carries its events back
    assert len(got_a) == 2


async def test_unregister_counts_connections(nodes: Callable[..., Any]) -> None:
    (a, _), (b, got_b) = await nodes("a"), await nodes("b")
    alice = _user()
    await b.register(alice, 10)
    await b.register(alice, 10)  # a second socket of the same device on this node
    await b.unregister(alice, 10)
    assert await a.online_devices(alice) == {10}
    await b.unregister(alice, 10)
    assert await a.online_devices(alice) == set()
    await a.publish({alice: [{"n": 1}]})
    await asyncio.sleep(0.1)
    assert got_b == []


async def test_dead_node_registrations_expire(nodes: Callable[..., Any]) -> None:
    clock = Clock()
    (a, _), (b, _) = await nodes("a", clock), await nodes("b", clock)
    alice = _user()
    await b.register(alice, 10)
    assert await a.online_devices(alice) == {10}
    clock.ms += 31_000  # b stopped refreshing (killed): 30 s ttl elapsed
    assert await a.online_devices(alice) == set()


async def test_bad_payload_and_failing_handler_do_not_stop_delivery(
    nodes: Callable[..., Any], redis_server: Any
) -> None:
    (a, _), (b, got_b) = await nodes("a"), await nodes("b")
    b.subscribe(lambda user_id, event: 1 / 0)  # a broken handler next to a good one
    alice = _user()
    await b.register(alice, 10)
    await a._redis.publish(f"node:{b.node_id}", b"not json")
    await a.publish({alice: [{"n": 2}]})
    await _until(lambda: got_b == [(alice, {"n": 2})])


@pytest.fixture
async def lone_bus(fresh_redis_server: RedisServer
                   ) -> AsyncIterator[tuple[RedisLiveBus, RedisServer]]:
    """A bus (not started: no background refresh) on a Redis the test may kill and restart."""
    client = open_redis(fresh_redis_server.url)
    bus = RedisLiveBus(client, f"lone-{random.randrange(10**9)}", ttl_s=30)
    yield bus, fresh_redis_server
    await bus.close()
    await client.aclose()


async def test_register_while_redis_is_down_leaves_no_phantom_device(
    lone_bus: tuple[RedisLiveBus, RedisServer],
) -> None:
    bus, redis = lone_bus
    alice = _user()
    redis.kill()
    with pytest.raises(Unavailable):
        await bus.register(alice, 10)
    redis.start()
    await bus.refresh()  # what the refresh loop does every ttl / 3 once Redis is back
    assert await bus.online_devices(alice) == set()
    assert await bus.register(alice, 10) is True  # nothing of the failed attempt counted
    assert await bus.unregister(alice, 10) is True


async def test_unregister_while_redis_is_down_stops_refreshing_the_device(
    lone_bus: tuple[RedisLiveBus, RedisServer],
) -> None:
    bus, redis = lone_bus
    alice = _user()
    assert await bus.register(alice, 10) is True
    redis.kill()
    with pytest.raises(Unavailable):
        await bus.unregister(alice, 10)
    redis.start()
    await bus.refresh()
    assert await bus.online_devices(alice) == set()
