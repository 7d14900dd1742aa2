"""The composition root: builds every adapter and service for a Settings, closes them on exit.

The backend is chosen by one setting (``Settings.backend``); nothing else in the code base
knows which stores are in use.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

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
from inbox.security import TokenIssuer
from inbox.service import MessageService
from inbox.sqlite_db import SqliteDatabase
from inbox.store import AccountStore, InboxStore
from inbox.store_sqlite import SqliteInboxStore
from sync.service import SyncService

log = logging.getLogger(__name__)


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
    checks: dict[str, object] = field(default_factory=dict)


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
    return wire_services(settings, clock, ids, inbox, accounts, bus)


def wire_services(settings: Settings, clock: Clock, ids: SnowflakeGenerator, inbox: InboxStore,
                  accounts: AccountStore, bus: LiveBus) -> Services:
    """Build the services over opened adapters (shared by every backend)."""
    tokens = TokenIssuer(settings.resolve_jwt_secret(), settings.token_ttl_s)
    auth = AccountService(accounts, tokens, ids.next_id, clock)
    messages = MessageService(inbox, accounts, ids.next_id, clock, [LivePublisher(bus)])
    sync = SyncService(inbox, accounts)
    hub = Hub(bus)
    config = GatewayConfig(settings.heartbeat_interval_ms, settings.ws_queue_size)
    gateway = Gateway(config, auth, accounts, inbox, hub, FrameHandlers(messages, sync), clock)
    return Services(settings, clock, inbox, accounts, auth, messages, sync, bus, gateway, ids,
                    {"inbox": inbox})
