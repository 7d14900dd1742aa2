"""Live delivery over the production store and bus (real Redis, Cassandra and uvicorn, a real
client): an entry whose event overtakes that of an earlier, slower send to the same inbox is
hidden by the store until the earlier one commits, and must then reach the socket right
after it, although its own event was used up on a read that could not see it yet."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from gateway.bus_redis import RedisLiveBus
from gateway.endpoint import Gateway, GatewayConfig
from gateway.handlers import FrameHandlers
from gateway.hub import Hub
from gateway.live import LivePublisher
from idgen.clock import SystemClock
from idgen.snowflake import SnowflakeGenerator
from inbox.accounts.security import TokenIssuer
from inbox.accounts.service import AccountService
from inbox.accounts.store_sqlite import SqliteAccountStore
from inbox.accounts.throttle import ClientLimits, ClientThrottle, Limit
from inbox.core.models import Caller, SendReceipt
from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox, DurableAppend
from inbox.messages.log_redis import RedisInboxLog
from inbox.messages.service import MessageService, SendRequest
from inbox.messages.store_hybrid import HybridInboxStore
from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from inbox.storage.cql_session import CqlSession
from inbox.storage.sqlite_db import SqliteDatabase
from sync.service import SyncService
from tests.api.wsclient import collect_entries, silent_for
from tests.gateway.serving import serving
from tests.servers.fixtures import (
    CassandraEndpoint,
    RedisEndpoint,
    cql_session,
    unique_keyspace,
)

GENEROUS = ClientLimits(*[Limit(rate=100.0, burst=100)] * 4)
PASSWORD = "correct-horse"  # noqa: S105 (a test account's password)
HELD = "held"


class HeldWrites(CassandraInbox):
    """The real durable half, whose write of a message with body ``held`` waits for
    ``release``: a send that reserved its position and is slow to store it."""

    def __init__(self, cql: CqlSession) -> None:
        super().__init__(cql)
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def write(self, append: DurableAppend, receipt: SendReceipt | None, ts_us: int
                    ) -> None:  # fmt: skip
        if append.draft.body == HELD:
            self.reached.set()
            await self.release.wait()
        await super().write(append, receipt, ts_us)


@dataclass
class Node:
    """One messenger node's gateway and send path over the production store and bus."""

    gateway: Gateway
    messages: MessageService
    bus: RedisLiveBus
    durable: HeldWrites
    callers: list[Caller]
    tokens: list[str]
    url: str = ""

    async def socket_of(self, index: int) -> Any:
        """A socket of user ``index`` past hello, once registered and caught up."""
        ws = await connect(self.url, additional_headers={
            "Authorization": f"Bearer {self.tokens[index]}"})
        assert json.loads(await ws.recv())["op"] == "hello"
        for _ in range(1000):
            if await self._settled(self.callers[index].user_id):
                return ws
            await asyncio.sleep(0.01)
        raise AssertionError("the socket was never registered and caught up")

    async def _settled(self, user_id: int) -> bool:
        conns = self.gateway.hub.connections(user_id)
        busy = any(c.delivery.pumping or c.delivery.needs_pump() for c in conns)
        return bool(conns) and not busy and bool(await self.bus.online_devices(user_id))


@pytest.fixture
async def node(tmp_path: Path, redis_server: RedisEndpoint,
               cassandra_server: CassandraEndpoint) -> AsyncIterator[Node]:  # fmt: skip
    keyspace = unique_keyspace("live_order")
    cql = await CqlSession.connect([cassandra_server.contact_point], keyspace,
                                   statements=INBOX_STATEMENTS, request_timeout=10.0)
    redis = Redis.from_url(redis_server.url)
    db = SqliteDatabase(tmp_path / "accounts.db")
    await db.open()
    clock = SystemClock()
    next_id = SnowflakeGenerator(random.randrange(1024), clock).next_id
    accounts = SqliteAccountStore(db)
    durable = HeldWrites(cql)
    inbox = HybridInboxStore(RedisInboxLog(redis), durable)
    bus = RedisLiveBus(redis, f"live-order-{secrets.token_hex(4)}")
    await bus.start()
    throttle = ClientThrottle(MemoryRateLimiter(clock), GENEROUS)
    auth = AccountService(accounts, TokenIssuer("k" * 32, 3600), next_id, clock, throttle)
    callers, tokens = [], []
    for name in ("alice", "bob"):
        user = await auth.signup(f"{name}{secrets.token_hex(4)}", PASSWORD, None,
                                 client="127.0.0.1")
        device, token = await auth.login(user.username, PASSWORD, "cli", client="127.0.0.1")
        callers.append(Caller(user.user_id, device.device_id))
        tokens.append(token.access_token)
    messages = MessageService(inbox, accounts, next_id, clock, [LivePublisher(bus)])
    hub = Hub(bus)
    gateway = Gateway(GatewayConfig(), auth, accounts, inbox, hub,
                      FrameHandlers(SyncService(inbox, accounts), {}), clock, throttle,
                      send_many=messages.send_many)
    rig = Node(gateway, messages, bus, durable, callers, tokens)
    async with serving(gateway.serve) as rig.url:
        yield rig
    durable.release.set()
    await bus.close()
    await redis.aclose()
    await cql.close()
    await db.close()
    await asyncio.to_thread(_drop, cassandra_server, keyspace)


def _drop(cassandra: CassandraEndpoint, keyspace: str) -> None:
    with cql_session(cassandra.host, cassandra.port) as session:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")


async def test_an_entry_announced_while_an_earlier_one_is_pending_follows_it(
    node: Node,
) -> None:
    alice, bob = node.callers
    ws = await node.socket_of(1)
    # Bob's own send reserves the next position in his inbox and is slow to store it...
    held = asyncio.create_task(node.messages.send(bob, SendRequest(
        HELD, "c1", to_user=alice.user_id)))  # fmt: skip
    async with asyncio.timeout(10):
        await node.durable.reached.wait()
    # ...while Alice's message, one position later, commits and is announced.
    await node.messages.send(alice, SendRequest("after", "c2", to_user=bob.user_id))
    assert await silent_for(ws, 0.5)  # hidden behind the pending position, as it must be
    node.durable.release.set()
    await held
    got = await collect_entries(ws, 2, timeout=5)
    assert [e["body"] for e in got] == [HELD, "after"]
    assert await silent_for(ws, 0.3)
    await ws.close()
