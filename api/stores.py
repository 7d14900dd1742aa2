"""Opening the storage adapters of one backend: ``Stores`` for the embedded or production set.

``Settings.backend`` picks the set: the embedded default keeps everything in one SQLite file
of the data dir (plus a file lock for the Snowflake worker id); production keeps inboxes,
accounts and metadata in Cassandra, sequences and serves hot inboxes from Redis streams, and
routes live events, worker-id leases and presence through Redis. Every adapter opened here is
closed by the ``AsyncExitStack`` it was opened on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from api.settings import Settings
from gateway.bus import LiveBus, LocalLiveBus
from idgen.clock import Clock
from idgen.lease_file import FileWorkerLease
from idgen.snowflake import SnowflakeGenerator
from inbox.accounts_sqlite import SqliteAccountStore
from inbox.errors import Unavailable
from inbox.groups_sqlite import SqliteGroupStore
from inbox.mutes_sqlite import SqliteMuteStore
from inbox.sqlite_db import SqliteDatabase
from inbox.store import AccountStore, GroupStore, InboxStore, MuteStore
from inbox.store_sqlite import SqliteInboxStore

log = logging.getLogger(__name__)


class Pingable(Protocol):
    """A store readiness can probe."""

    async def ping(self) -> None: ...


@dataclass
class Stores:
    """Every opened storage adapter of one backend, and the readiness probe of each store."""

    inbox: InboxStore
    accounts: AccountStore
    mutes: MuteStore
    groups: GroupStore
    bus: LiveBus
    next_id: Callable[[], int]
    checks: dict[str, Pingable] = field(default_factory=dict)


async def open_stores(settings: Settings, stack: AsyncExitStack, clock: Clock) -> Stores:
    """Open the backend ``settings.backend`` names."""
    if settings.backend == "production":
        return await open_production_stores(settings, stack, clock)
    return await open_embedded_stores(settings, stack, clock)


async def open_embedded_stores(settings: Settings, stack: AsyncExitStack, clock: Clock
                               ) -> Stores:
    """SQLite in the data dir; one process owns it (the worker-id file lock enforces that)."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    lease = FileWorkerLease(data_dir / "idgen.lock")
    worker_id = await lease.acquire()
    stack.push_async_callback(lease.release)
    db = SqliteDatabase(data_dir / "messenger.db")
    await db.open()
    stack.push_async_callback(db.close)
    inbox = SqliteInboxStore(db)
    bus = LocalLiveBus()
    await bus.start()
    stack.push_async_callback(bus.close)
    return Stores(
        inbox=inbox,
        accounts=SqliteAccountStore(db),
        mutes=SqliteMuteStore(db),
        groups=SqliteGroupStore(db),
        bus=bus,
        next_id=SnowflakeGenerator(worker_id, clock).next_id,
        checks={"inbox": inbox},
    )


async def open_production_stores(settings: Settings, stack: AsyncExitStack, clock: Clock
                                 ) -> Stores:
    """Redis (hot inboxes, live bus, worker-id lease) + Cassandra (everything durable)."""
    # Imported here so that the embedded default never loads the Cassandra driver.
    from gateway.bus_redis import RedisLiveBus
    from inbox.accounts_cassandra import ACCOUNT_STATEMENTS, CassandraAccountStore
    from inbox.groups_cassandra import GROUP_STATEMENTS, CassandraGroupStore
    from inbox.log_redis import RedisInboxLog
    from inbox.mutes_cassandra import MUTE_STATEMENTS, CassandraMuteStore
    from inbox.store_cassandra import INBOX_STATEMENTS, CassandraInbox, CqlSession
    from inbox.store_hybrid import HybridInboxStore

    if not settings.redis_url or not settings.cassandra_hosts:
        raise ValueError("the production backend needs MESSENGER_REDIS_URL and "
                         "MESSENGER_CASSANDRA_HOSTS")
    redis = open_redis(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    cql = await CqlSession.connect(
        settings.cassandra_host_list(),
        settings.cassandra_keyspace,
        statements={**INBOX_STATEMENTS, **ACCOUNT_STATEMENTS, **MUTE_STATEMENTS,
                    **GROUP_STATEMENTS},
        replication=settings.replication(),
    )
    stack.push_async_callback(cql.close)
    next_id = await lease_worker_id(redis, settings.node_name, clock, stack)
    durable = CassandraInbox(cql)
    inbox = HybridInboxStore(RedisInboxLog(redis), durable, clock_ms=clock.now_ms)
    bus = RedisLiveBus(redis, settings.node_name)
    await bus.start()
    stack.push_async_callback(bus.close)
    return Stores(
        inbox=inbox,
        accounts=CassandraAccountStore(cql),
        mutes=CassandraMuteStore(cql),
        groups=CassandraGroupStore(cql),
        bus=bus,
        next_id=next_id,
        checks={"redis": RedisPing(redis), "cassandra": durable},
    )


async def open_account_store(settings: Settings, stack: AsyncExitStack) -> AccountStore:
    """Only the account store (``messenger push-worker`` needs nothing else).

    Embedded: opens the SQLite file without the worker-id lock, so it runs beside ``serve``.
    """
    if settings.backend == "production":
        from inbox.accounts_cassandra import ACCOUNT_STATEMENTS, CassandraAccountStore
        from inbox.store_cassandra import CqlSession

        cql = await CqlSession.connect(settings.cassandra_host_list(), settings.cassandra_keyspace,
                                       statements=ACCOUNT_STATEMENTS, migrate=False)
        stack.push_async_callback(cql.close)
        return CassandraAccountStore(cql)
    db = SqliteDatabase(settings.data_dir / "messenger.db")
    await db.open()
    stack.push_async_callback(db.close)
    return SqliteAccountStore(db)


def open_redis(url: str) -> Redis:
    """A Redis client with timeouts, so a dead Redis fails requests instead of hanging them."""
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                          health_check_interval=30)


class RedisPing:
    """Readiness probe of a Redis client."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def ping(self) -> None:
        await self._redis.ping()


async def lease_worker_id(redis: Redis, node_name: str, clock: Clock, stack: AsyncExitStack
                          ) -> Callable[[], int]:
    """Lease a Snowflake worker id in Redis and keep it renewed; an id allocator over it.

    Once the lease is lost (Redis said so, or it could not be renewed before its TTL) the
    allocator refuses with ``Unavailable``: another node may now hold the same worker id.
    """
    from idgen.lease_redis import RedisWorkerLease

    lease = RedisWorkerLease(redis, node_name)
    generator = SnowflakeGenerator(await lease.acquire(), clock)
    lost = asyncio.Event()
    renewal = asyncio.create_task(lease.run_renewal(lost.set), name="worker-id-lease")

    async def stop() -> None:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        with contextlib.suppress(Exception):  # Redis may be gone at shutdown; the key expires
            await lease.release()

    stack.push_async_callback(stop)

    def next_id() -> int:
        if lost.is_set():
            raise Unavailable("this node lost its Snowflake worker-id lease; restart it")
        return generator.next_id()

    return next_id
