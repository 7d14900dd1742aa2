"""The composition root: builds every adapter and service for a Settings, closes them on exit.

The backend is chosen by one setting (``Settings.backend``); nothing else in the code base
knows which stores are in use.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from redis.asyncio import Redis

from api.push_setup import build_senders
from api.settings import Settings
from api.stores import Pingable, Stores, open_account_store, open_redis, open_stores
from gateway.admission import Admission
from gateway.bus import LiveBus
from gateway.endpoint import Gateway, GatewayConfig
from gateway.handlers import FrameHandlers, read_handler
from gateway.hub import Hub
from gateway.live import LivePublisher
from gateway.presence_contacts import StoreContacts
from gateway.presence_service import PresenceService, presence_window_ms
from gateway.typing_relay import TypingRelay
from gateway.unacked import UnackedWatch
from idgen.clock import SYSTEM_CLOCK, Clock
from idgen.tasks import stop_tasks
from inbox.accounts.port import AccountStore
from inbox.accounts.security import TokenIssuer
from inbox.accounts.service import AccountService
from inbox.accounts.throttle import ClientLimits, ClientThrottle, Limit
from inbox.attachments.service import AttachmentCollector, AttachmentLimits, AttachmentService
from inbox.conversations.index import ConversationIndex
from inbox.conversations.mutes import MuteService
from inbox.conversations.reads import ReadService
from inbox.conversations.views import ConversationViews
from inbox.core.participants import Participants
from inbox.groups.service import GroupService
from inbox.messages.deletes import DeleteService
from inbox.messages.port import InboxStore
from inbox.messages.service import MessageService
from inbox.ratelimit.port import SendLimits
from push.metrics import PushMetrics
from push.planner import PushPlanner
from push.queue import PushQueue
from push.queue_redis import RedisQueue
from push.queue_sqlite import SqliteQueue
from push.retry import RetryPolicy
from push.titles import PushTitles
from push.unacked import UnackedPusher
from push.worker import PushWorker
from sync.service import SyncService

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the routes and the gateway use, built once per process."""

    settings: Settings
    clock: Clock
    stores: Stores
    auth: AccountService
    messages: MessageService
    sync: SyncService
    gateway: Gateway
    push_queue: PushQueue
    push_metrics: PushMetrics
    participants: Participants
    groups: GroupService
    conversation_views: ConversationViews
    reads: ReadService
    deletes: DeleteService
    mutes: MuteService
    presence: PresenceService
    attachments: AttachmentService

    @property
    def inbox(self) -> InboxStore:
        return self.stores.inbox

    @property
    def accounts(self) -> AccountStore:
        return self.stores.accounts

    @property
    def bus(self) -> LiveBus:
        return self.stores.bus

    @property
    def checks(self) -> dict[str, Pingable]:
        return self.stores.checks


async def open_services(settings: Settings, stack: AsyncExitStack, clock: Clock = SYSTEM_CLOCK
                        ) -> Services:
    """Open the configured backend's adapters on ``stack`` and wire the services."""
    stores = await open_stores(settings, stack, clock)
    queue = await open_push_queue(settings, stack, clock, stores.redis)
    services = wire_services(settings, clock, stores, queue)
    await services.presence.start()
    stack.push_async_callback(services.presence.close)  # before the bus closes
    unacked = services.gateway.unacked
    if unacked is not None:
        await unacked.start()
        stack.push_async_callback(unacked.close)  # its last pushes before the queue closes
    collector = AttachmentCollector(services.attachments, settings.attachments_gc_interval_s)
    collector.start()
    stack.push_async_callback(collector.close)
    if settings.push_workers > 0:
        start_push_workers(settings, queue, stores.accounts, services.push_metrics, clock, stack)
    return services


async def open_push_workers(settings: Settings, stack: AsyncExitStack,
                            clock: Clock = SYSTEM_CLOCK) -> None:
    """``messenger push-worker``: only the account store, the job queue and the workers."""
    accounts = await open_account_store(settings, stack)
    redis = open_redis(settings.redis_url) if settings.redis_url else None
    if redis is not None:
        stack.push_async_callback(redis.aclose)
    queue = await open_push_queue(settings, stack, clock, redis)
    workers = max(1, settings.push_workers)
    start_push_workers(settings.model_copy(update={"push_workers": workers}), queue,
                       accounts, PushMetrics(), clock, stack)


def wire_services(settings: Settings, clock: Clock, stores: Stores, queue: PushQueue
                  ) -> Services:
    """Build the services over opened adapters (shared by every backend)."""
    accounts, inbox, bus = stores.accounts, stores.inbox, stores.bus
    tokens = TokenIssuer(settings.resolve_jwt_secret(), settings.token_ttl_s, clock)
    throttle = ClientThrottle(stores.ratelimiter, client_limits(settings))
    hub = Hub(bus)
    auth = AccountService(accounts, tokens, stores.next_id, clock, throttle, sessions=hub)

    participants = Participants(stores.groups)
    attachments = AttachmentService(stores.attachments, stores.blobs, inbox, participants,
                                    stores.next_id, clock,
                                    settings.attachments_root() / "spool",
                                    attachment_limits(settings))
    views = ConversationViews(stores.conversations, inbox, accounts, stores.groups,
                              participants)
    titles = PushTitles(accounts, stores.groups)
    planner = PushPlanner(accounts, views, stores.mutes, bus, queue, clock, titles,
                          settings.push_preview)
    unacked = None
    if settings.ack_window_s > 0:  # live deliveries stay provisional until acked
        unacked = UnackedWatch(
            UnackedPusher(accounts, views, stores.mutes, queue, clock, titles,
                          settings.push_preview),
            clock, max(1, round(settings.ack_window_s * 1000)))
    messages = MessageService(inbox, accounts, stores.next_id, clock,
                              [LivePublisher(bus), planner, attachments],
                              recipients=participants,  # group sends go to every member
                              steps=[ConversationIndex(stores.conversations, participants)],
                              limiter=stores.ratelimiter,
                              limits=SendLimits(settings.send_rate_per_s, settings.send_burst),
                              attachments=attachments)
    reads = ReadService(stores.conversations, participants, messages, clock)
    deletes = DeleteService(stores.conversations, participants, messages, clock)
    groups = GroupService(stores.groups, accounts, messages, stores.next_id, clock)
    sync = SyncService(inbox, accounts, unacked.acked if unacked is not None else None)
    config = GatewayConfig(settings.heartbeat_interval_ms, settings.ws_queue_size)
    typing = TypingRelay(participants, stores.ratelimiter, hub, settings.typing_interval_s)
    handlers = FrameHandlers(sync, {"read": read_handler(reads.mark_read),
                                    "typing": typing.op_typing})
    presence = PresenceService(bus, hub, StoreContacts(stores.conversations, stores.groups),
                               accounts, clock, presence_window_ms(settings.heartbeat_interval_ms))
    admission = Admission(clock, Limit(settings.upgrades_per_node_rate_per_s,
                                       settings.upgrades_per_node_burst))
    gateway = Gateway(config, auth, accounts, inbox, hub, handlers, clock, throttle,
                      presence=presence, send_many=messages.send_many, admission=admission,
                      unacked=unacked)
    return Services(settings, clock, stores, auth, messages, sync, gateway, queue, PushMetrics(),
                    participants=participants, groups=groups,
                    conversation_views=views, reads=reads, deletes=deletes,
                    mutes=MuteService(participants, stores.mutes), presence=presence,
                    attachments=attachments)


def attachment_limits(settings: Settings) -> AttachmentLimits:
    """The ``MESSENGER_ATTACHMENTS_*`` limits."""
    return AttachmentLimits(
        max_bytes=settings.attachments_max_bytes,
        max_image_pixels=settings.attachments_max_image_pixels,
        grace_ms=int(settings.attachments_grace_s * 1000),
        upload_expiry_s=settings.attachments_upload_expiry_s,
        link_expiry_s=settings.attachments_link_expiry_s,
    )


def client_limits(settings: Settings) -> ClientLimits:
    """The per-client limits of ``MESSENGER_*_BURST`` / ``*_RATE_PER_S``."""
    return ClientLimits(
        login_failures_per_user=Limit(settings.login_failures_per_user_rate_per_s,
                                      settings.login_failures_per_user_burst),
        login_failures_per_address=Limit(settings.login_failures_per_address_rate_per_s,
                                         settings.login_failures_per_address_burst),
        signups_per_address=Limit(settings.signups_per_address_rate_per_s,
                                  settings.signups_per_address_burst),
        upgrades_per_address=Limit(settings.upgrades_per_address_rate_per_s,
                                   settings.upgrades_per_address_burst),
    )


async def open_push_queue(settings: Settings, stack: AsyncExitStack, clock: Clock,
                          redis: Redis | None) -> PushQueue:
    """The durable push queue: a Redis stream on ``redis`` when Redis is configured, else
    SQLite in the data dir."""
    queue: PushQueue
    if redis is not None:
        queue = RedisQueue(redis, clock)
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
            await stop_tasks(task)

        stack.push_async_callback(stop)
