"""Opening the storage adapters of one backend: ``Stores`` for the embedded or production set.

``Settings.backend`` picks the set: the embedded default keeps everything in one SQLite file
of the data dir (plus a file lock for the Snowflake worker id); production keeps inboxes,
accounts and metadata in Cassandra, sequences and serves hot inboxes from Redis streams, and
routes live events, worker-id leases and presence through Redis. Every adapter opened here is
closed by the ``AsyncExitStack`` it was opened on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Protocol

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

from api.metrics import timed
from api.settings import Settings
from gateway.bus import LiveBus, LocalLiveBus
from idgen.clock import Clock
from idgen.lease import LeaseLostError
from idgen.lease_file import FileWorkerLease
from idgen.leased import LeasedSnowflake
from idgen.snowflake import SnowflakeGenerator
from inbox.accounts.port import AccountStore
from inbox.accounts.store_sqlite import SqliteAccountStore
from inbox.attachments.blobs import BlobStore
from inbox.attachments.blobs_local import LocalBlobStore
from inbox.attachments.port import AttachmentStore
from inbox.attachments.store_sqlite import SqliteAttachmentStore
from inbox.conversations.mutes_sqlite import SqliteMuteStore
from inbox.conversations.port import ConversationStore, MuteStore
from inbox.conversations.store_sqlite import SqliteConversationStore
from inbox.core.errors import dependency_failed
from inbox.groups.port import GroupStore
from inbox.groups.store_sqlite import SqliteGroupStore
from inbox.messages.port import InboxStore
from inbox.messages.store_sqlite import SqliteInboxStore
from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from inbox.ratelimit.port import RateLimiter
from inbox.storage.sqlite_db import SqliteDatabase

log = logging.getLogger(__name__)


WORKER_LEASE_TTL_MS = 10_000
"""Snowflake worker-id lease TTL (renewed every third); ids pause this long (plus the clock
skew) after a loss only when another node holds the lost id (``idgen.leased``)."""
REDIS_MAX_CONNECTIONS = 256
"""Connections per Redis client (one client per process for stores, bus and leases)."""
MAX_CLOCK_SKEW_MS = 1_000
"""The clock skew between nodes that id uniqueness tolerates across a worker-id hand-over."""


class Pingable(Protocol):
    """A store readiness can probe."""

    async def ping(self) -> None:
        """Return when the store answers; raise (any error) when it does not."""
        ...


@dataclass
class Stores:
    """Every opened storage adapter of one backend, and the readiness probe of each store."""

    inbox: InboxStore
    accounts: AccountStore
    mutes: MuteStore
    groups: GroupStore
    bus: LiveBus
    next_id: Callable[[], int]
    ratelimiter: RateLimiter
    conversations: ConversationStore
    attachments: AttachmentStore
    blobs: BlobStore
    checks: dict[str, Pingable] = field(default_factory=dict)
    redis: Redis | None = None
    """The process's one Redis client (``MESSENGER_REDIS_URL``), for the push queue too."""


async def open_stores(settings: Settings, stack: AsyncExitStack, clock: Clock) -> Stores:
    """Open the backend ``settings.backend`` names, over one Redis client when configured;
    every store operation is timed into ``messenger_store_operation_seconds``."""
    blobs, blob_checks = await open_blobs(settings, stack)
    if settings.backend == "production":
        assert settings.redis_url is not None  # Settings checked it  # noqa: S101
        redis = open_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        stores = await open_production_stores(settings, stack, clock, redis, blobs)
        stores.checks.update(blob_checks)
        return timed_stores(stores, inbox="redis+cassandra", durable="cassandra", hot="redis")
    stores = await open_embedded_stores(settings, stack, clock, blobs)
    stores.checks.update(blob_checks)
    return timed_stores(stores, inbox="sqlite", durable="sqlite", hot="memory")


async def open_blobs(settings: Settings, stack: AsyncExitStack
                     ) -> tuple[BlobStore, dict[str, Pingable]]:
    """The attachment blob store: S3 when ``MESSENGER_ATTACHMENTS_S3_BUCKET`` is set (also
    a readiness check, ``object_store``), else a directory of the data dir."""
    if settings.attachments_s3_bucket:
        from inbox.attachments.blobs_s3 import S3BlobStore, S3Config

        s3 = S3BlobStore(S3Config(
            bucket=settings.attachments_s3_bucket,
            endpoint_url=settings.attachments_s3_endpoint,
            region=settings.attachments_s3_region,
            access_key_id=settings.attachments_s3_access_key_id,
            secret_access_key=settings.attachments_s3_secret_access_key,
            public_endpoint_url=settings.attachments_s3_public_endpoint,
            path_style=settings.attachments_s3_path_style,
        ))
        stack.push_async_callback(s3.close)
        await s3.open()
        return s3, {"object_store": s3}
    if settings.backend == "production":
        log.warning("attachments are kept in %s: with more than one node, set "
                    "MESSENGER_ATTACHMENTS_S3_BUCKET", settings.attachments_root())
    local = LocalBlobStore(settings.attachments_root())
    await local.open()
    return local, {}


def timed_stores(stores: Stores, *, inbox: str, durable: str, hot: str) -> Stores:
    """``stores`` with each port's operations timed under its backend's name."""
    return replace(
        stores,
        inbox=timed(stores.inbox, inbox, "inbox"),
        accounts=timed(stores.accounts, durable, "accounts"),
        mutes=timed(stores.mutes, durable, "mutes"),
        groups=timed(stores.groups, durable, "groups"),
        conversations=timed(stores.conversations, durable, "conversations"),
        attachments=timed(stores.attachments, durable, "attachments"),
        bus=timed(stores.bus, hot, "live_bus"),
        ratelimiter=timed(stores.ratelimiter, hot, "ratelimit"),
    )


async def open_embedded_stores(settings: Settings, stack: AsyncExitStack, clock: Clock,
                               blobs: BlobStore) -> Stores:
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
        ratelimiter=MemoryRateLimiter(clock),
        conversations=SqliteConversationStore(db),
        attachments=SqliteAttachmentStore(db),
        blobs=blobs,
        checks={"inbox": inbox},
    )


async def open_production_stores(settings: Settings, stack: AsyncExitStack, clock: Clock,
                                 redis: Redis, blobs: BlobStore) -> Stores:
    """Redis (hot inboxes, live bus, worker-id lease) + Cassandra (everything durable)."""
    # Imported here so that the embedded default never loads the Cassandra driver.
    from gateway.bus_redis import RedisLiveBus, registry_ttl_s
    from inbox.accounts.store_cassandra import ACCOUNT_STATEMENTS, CassandraAccountStore
    from inbox.attachments.store_cassandra import (
        ATTACHMENT_STATEMENTS,
        CassandraAttachmentStore,
    )
    from inbox.conversations.mutes_cassandra import MUTE_STATEMENTS, CassandraMuteStore
    from inbox.conversations.store_cassandra import (
        CONVERSATION_STATEMENTS,
        CassandraConversationStore,
    )
    from inbox.groups.store_cassandra import GROUP_STATEMENTS, CassandraGroupStore
    from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox
    from inbox.messages.log_redis import RedisInboxLog
    from inbox.messages.store_hybrid import HybridInboxStore
    from inbox.ratelimit.limiter_redis import RedisRateLimiter
    from inbox.storage.cql_session import CqlSession

    cql = await CqlSession.connect(
        settings.cassandra_host_list(),
        settings.cassandra_keyspace,
        statements={**INBOX_STATEMENTS, **ACCOUNT_STATEMENTS, **MUTE_STATEMENTS,
                    **GROUP_STATEMENTS, **CONVERSATION_STATEMENTS, **ATTACHMENT_STATEMENTS},
        replication=settings.replication(),
    )
    stack.push_async_callback(cql.close)
    ids = await lease_worker_id(redis, settings.node_name, clock, stack)
    durable = CassandraInbox(cql)
    inbox = HybridInboxStore(RedisInboxLog(redis), durable, clock=clock)
    bus = RedisLiveBus(redis, settings.node_name, clock=clock,
                       ttl_s=registry_ttl_s(settings.heartbeat_interval_ms))
    await bus.start()
    stack.push_async_callback(bus.close)
    return Stores(
        inbox=inbox,
        accounts=CassandraAccountStore(cql),
        mutes=CassandraMuteStore(cql),
        groups=CassandraGroupStore(cql),
        bus=bus,
        next_id=issuing(ids),
        ratelimiter=RedisRateLimiter(redis),
        conversations=CassandraConversationStore(cql),
        attachments=CassandraAttachmentStore(cql),
        blobs=blobs,
        # Every send needs all three: readiness is 503 whenever one would refuse it.
        checks={"redis": RedisPing(redis), "cassandra": durable, "worker_id": ids},
        redis=redis,
    )


async def open_account_store(settings: Settings, stack: AsyncExitStack) -> AccountStore:
    """Only the account store (``messenger push-worker`` needs nothing else).

    Embedded: opens the SQLite file without the worker-id lock, so it runs beside ``serve``.
    """
    if settings.backend == "production":
        from inbox.accounts.store_cassandra import ACCOUNT_STATEMENTS, CassandraAccountStore
        from inbox.storage.cql_session import CqlSession

        cql = await CqlSession.connect(settings.cassandra_host_list(), settings.cassandra_keyspace,
                                       statements=ACCOUNT_STATEMENTS, migrate=False)
        stack.push_async_callback(cql.close)
        return CassandraAccountStore(cql)
    db = SqliteDatabase(settings.data_dir / "messenger.db")
    await db.open()
    stack.push_async_callback(db.close)
    return SqliteAccountStore(db)


def open_redis(url: str) -> Redis:
    """A Redis client with timeouts, so a dead Redis fails requests instead of hanging them.

    A command that meets a dead connection (Redis restarted) is sent again (up to 3 times).
    If the first attempt had run, the retry is still safe for the inbox log: a repeated
    reserve leaves a pending mark that readers fence after its TTL, and a commit whose reply
    was lost is fenced by its writer either way (see ``inbox.messages.store_hybrid``).
    A burst needing more than ``REDIS_MAX_CONNECTIONS`` at once (a 100-member fan-out seeding
    every inbox) waits up to 5 s for a free connection instead of failing.
    """
    pool = BlockingConnectionPool.from_url(
        url, max_connections=REDIS_MAX_CONNECTIONS, timeout=5, socket_timeout=5,
        socket_connect_timeout=5, health_check_interval=30, retry=Retry(NoBackoff(), 3),
        retry_on_error=[ConnectionError],
    )
    return Redis.from_pool(pool)  # closing the client closes its pool


class RedisPing:
    """Readiness probe of a Redis client."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def ping(self) -> None:
        await self._redis.ping()


async def lease_worker_id(redis: Redis, node_name: str, clock: Clock, stack: AsyncExitStack
                          ) -> LeasedSnowflake:
    """Lease a Snowflake worker id in Redis, kept renewed (and re-leased after a loss)."""
    from idgen.lease_redis import RedisWorkerLease

    lease = RedisWorkerLease(redis, node_name, ttl_ms=WORKER_LEASE_TTL_MS)
    ids = LeasedSnowflake(lease, clock, hold_off_ms=WORKER_LEASE_TTL_MS + MAX_CLOCK_SKEW_MS)
    await ids.start()
    stack.push_async_callback(ids.close)
    return ids


def issuing(ids: LeasedSnowflake) -> Callable[[], int]:
    """``ids.next_id`` whose refusal (no worker id leased right now) is a 503."""

    def next_id() -> int:
        try:
            return ids.next_id()
        except LeaseLostError as exc:
            raise dependency_failed("the id allocator", "a worker-id lease", exc) from exc

    return next_id
