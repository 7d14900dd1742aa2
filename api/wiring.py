"""The composition root: builds every adapter and service for a Settings, closes them on exit.

The backend is chosen by one setting (``Settings.backend``); nothing else in the code base
knows which stores are in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from api.push_setup import build_senders
from api.settings import Settings
from gateway.bus import LiveBus, LocalLiveBus
from gateway.endpoint import Gateway, GatewayConfig
from gateway.handlers import FrameHandlers
from gateway.hub import Hub
from gateway.live import LivePublisher
from idgen.clock import SYSTEM_CLOCK, Clock
from idgen.lease_file import FileWorkerLease
from idgen.snowflake import SnowflakeGenerator
from inbox.accounts import AccountService
from inbox.accounts_sqlite import SqliteAccountStore
from inbox.models import AppendBatch
from inbox.mutes_sqlite import SqliteMuteStore
from inbox.security import TokenIssuer
from inbox.service import MessageService
from inbox.sqlite_db import SqliteDatabase
from inbox.store import AccountStore, InboxStore, MuteStore
from inbox.store_sqlite import SqliteInboxStore
from push.metrics import PushMetrics
from push.planner import PushPlanner
from push.queue import PushQueue
from push.queue_redis import RedisQueue
from push.queue_sqlite import SqliteQueue
from push.retry import RetryPolicy
from push.worker import PushWorker
from sync.service import SyncService

log = logging.getLogger(__name__)


class Pingable(Protocol):
    """A store readiness can probe."""

    async def ping(self) -> None: ...


@dataclass
class Services:
    """Everything the routes and the gateway use, built once per process."""

    settings: Settings
    clock: Clock
    inbox: InboxStore
    accounts: AccountStore
    auth: AccountService
    messages: MessageService
    sync: SyncService
    bus: LiveBus
    gateway: Gateway
    ids: SnowflakeGenerator
    mutes: MuteStore
    push_queue: PushQueue
    push_metrics: PushMetrics
    checks: dict[str, Pingable] = field(default_factory=dict)


async def open_services(settings: Settings, stack: AsyncExitStack, clock: Clock = SYSTEM_CLOCK
                        ) -> Services:
    """Open the embedded backend's adapters on ``stack`` and wire the services."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    lease = FileWorkerLease(data_dir / "idgen.lock")
    worker_id = await lease.acquire()
    stack.push_async_callback(lease.release)
    ids = SnowflakeGenerator(worker_id, clock)
    db = SqliteDatabase(data_dir / "messenger.db")
    await db.open()
    stack.push_async_callback(db.close)
    inbox: InboxStore = SqliteInboxStore(db)
    accounts: AccountStore = SqliteAccountStore(db)
    bus: LiveBus = LocalLiveBus()
    await bus.start()
    stack.push_async_callback(bus.close)
    queue = await open_push_queue(settings, stack, clock)
    services = wire_services(
        settings, clock, ids, inbox, accounts, bus, SqliteMuteStore(db), queue
    )
    if settings.push_workers > 0:
        start_push_workers(settings, queue, accounts, services.push_metrics, clock, stack)
    return services


async def open_push_workers(settings: Settings, stack: AsyncExitStack,
                            clock: Clock = SYSTEM_CLOCK) -> None:
    """``messenger push-worker``: only the account store, the job queue and the workers."""
    db = SqliteDatabase(settings.data_dir / "messenger.db")
    await db.open()
    stack.push_async_callback(db.close)
    queue = await open_push_queue(settings, stack, clock)
    workers = max(1, settings.push_workers)
    start_push_workers(settings.model_copy(update={"push_workers": workers}), queue,
                       SqliteAccountStore(db), PushMetrics(), clock, stack)


def wire_services(settings: Settings, clock: Clock, ids: SnowflakeGenerator, inbox: InboxStore,
                  accounts: AccountStore, bus: LiveBus, mutes: MuteStore, queue: PushQueue
                  ) -> Services:
    """Build the services over opened adapters (shared by every backend)."""
    tokens = TokenIssuer(settings.resolve_jwt_secret(), settings.token_ttl_s)
    auth = AccountService(accounts, tokens, ids.next_id, clock)

    async def push_title(batch: AppendBatch) -> str:
        sender = await accounts.get_user(batch.draft.sender_id)
        return sender.display_name if sender else "New message"

    planner = PushPlanner(accounts, inbox, mutes, bus, queue, clock, push_title,
                          settings.push_preview)
    messages = MessageService(inbox, accounts, ids.next_id, clock, [LivePublisher(bus), planner])
    sync = SyncService(inbox, accounts)
    hub = Hub(bus)
    config = GatewayConfig(settings.heartbeat_interval_ms, settings.ws_queue_size)
    gateway = Gateway(config, auth, accounts, inbox, hub, FrameHandlers(messages, sync), clock)
    return Services(settings, clock, inbox, accounts, auth, messages, sync, bus, gateway, ids,
                    mutes, queue, PushMetrics(), {"inbox": inbox})


async def open_push_queue(settings: Settings, stack: AsyncExitStack, clock: Clock) -> PushQueue:
    """The durable push queue: a Redis stream when Redis is configured, else SQLite."""
    queue: PushQueue
    if settings.redis_url:
        client = Redis.from_url(settings.redis_url)
        stack.push_async_callback(client.aclose)
        queue = RedisQueue(client, clock)
    else:
        queue = SqliteQueue(settings.data_dir / "push.db", clock)
    stack.push_async_callback(queue.close)
    return queue


def start_push_workers(settings: Settings, queue: PushQueue, accounts: AccountStore,
                       metrics: PushMetrics, clock: Clock, stack: AsyncExitStack) -> None:
    """Run ``settings.push_workers`` push workers in this process until the stack closes."""
    senders = build_senders(settings)
    for sender in senders.values():
        stack.push_async_callback(sender.aclose)
    for n in range(settings.push_workers):
        worker = PushWorker(queue, senders, accounts, RetryPolicy(), metrics, clock,
                            f"{settings.node_name}/{n}")
        task = asyncio.create_task(worker.run(), name=f"push-worker-{n}")

        async def stop(worker: PushWorker = worker, task: asyncio.Task[None] = task) -> None:
            worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        stack.push_async_callback(stop)
