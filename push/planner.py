"""Turns durable ``message`` entries into push jobs for devices without a live connection.

An ``AppendListener``: it runs after the append is durable and before the send is answered,
so an acknowledged message has its push jobs queued (they survive a crash in the queue).
The badge is the recipient's total unread count from the read markers (API.md), which the
conversation index already includes the new message in (it is an append step, run first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway.bus import LiveBus
from idgen.clock import Clock
from inbox.models import AppendBatch, Appended, EntryKind
from inbox.store import AccountStore, MuteStore
from push.decision import plan_pushes
from push.job import PushJob
from push.queue import PushQueue

Title = Callable[[AppendBatch], Awaitable[str]]


class UnreadTotal(Protocol):
    """Where the badge comes from: the user's unread messages over all conversations."""

    async def total_unread(self, user_id: int) -> int:
        """Messages from others above the user's read markers, deleted ones excluded."""
        ...


class PushPlanner:
    """Queues one push job per offline device with a token, per recipient of a message."""

    def __init__(
        self,
        accounts: AccountStore,
        unread: UnreadTotal,
        mutes: MuteStore,
        bus: LiveBus,
        queue: PushQueue,
        clock: Clock,
        title: Title,
        preview: bool,
    ) -> None:
        self._accounts = accounts
        self._unread = unread
        self._mutes = mutes
        self._bus = bus
        self._queue = queue
        self._clock = clock
        self._title = title
        self._preview = preview

    async def on_appended(self, batch: AppendBatch, appended: Appended) -> None:
        draft = batch.draft
        if draft.kind is not EntryKind.MESSAGE:
            return
        jobs: list[PushJob] = []
        title: str | None = None  # looked up once per message, only if someone needs a push
        for user_id, entry_id in appended.positions.items():
            if user_id == draft.sender_id:
                continue
            devices = [d for d in await self._accounts.list_devices(user_id) if d.push]
            if not devices:
                continue
            if title is None:
                title = await self._title(batch)
            jobs += plan_pushes(
                draft, user_id, entry_id, devices,
                online_device_ids=await self._bus.online_devices(user_id),
                muted=await self._mutes.muted(user_id, draft.conversation_id,
                                              self._clock.now_ms()),
                title=title,
                badge=await self._unread.total_unread(user_id),
                preview=self._preview,
            )
        if jobs:
            await self._queue.enqueue(jobs)
