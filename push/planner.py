"""Turns durable ``message`` entries into push jobs for devices without a live connection.

An ``AppendListener``: it runs after the append is durable and before the send is answered,
so an acknowledged message has its push jobs queued (they survive a crash in the queue).
The badge is the recipient's total unread count from the read markers (docs/push.md), which the
conversation index already includes the new message in (it is an append step, run first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol, TypeVar

from idgen.clock import Clock
from inbox.core.errors import Unavailable
from inbox.core.models import AppendBatch, Appended, Device, EntryDraft, EntryKind
from inbox.messages.service import Appends
from push.decision import push_jobs, push_targets
from push.job import PushJob

Title = Callable[[AppendBatch], Awaitable[str]]
T = TypeVar("T")
log = logging.getLogger(__name__)

PLAN_CONCURRENCY = 16
"""Recipients whose lookups are in flight at once, per message (bounds the store load)."""


class UnreadTotal(Protocol):
    """Where the badge comes from: the user's unread messages over all conversations."""

    async def total_unread(self, user_id: int) -> int:
        """Messages from others above the user's read markers, deleted ones excluded."""
        ...


class DeviceList(Protocol):
    """The recipients' devices and push tokens (``inbox.accounts.port.AccountStore``)."""

    async def devices_of(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        """Each user's active devices, in a few store requests for all of them."""
        ...


class MuteList(Protocol):
    """Muted conversations (``inbox.conversations.port.MuteStore``)."""

    async def muted(self, user_id: int, conversation_id: str, now_ms: int) -> bool:
        """Whether the conversation is muted for the user at ``now_ms``."""
        ...


class OnlineDevices(Protocol):
    """Which devices hold a live connection (``gateway.bus.LiveBus``)."""

    async def online_devices(self, user_id: int) -> set[int]:
        """Devices of the user with a live connection on any node."""
        ...


class JobQueue(Protocol):
    """Where planned jobs go (``push.queue.PushQueue``)."""

    async def enqueue(self, jobs: Sequence[PushJob]) -> int:
        """Add ``jobs`` durably (deduplicated on ``job_id``); how many were new."""
        ...


class PushPlanner:
    """Queues one push job per offline device with a token, per recipient of a message.

    The recipients' devices are read once for the whole message; only recipients with a
    push token are looked at further, concurrently (at most ``PLAN_CONCURRENCY`` at once):
    first who gets a push (mute, live connections), then, only for those, the badge (the
    costly read: an unread count over every conversation) and, once, the title.
    """

    def __init__(
        self,
        accounts: DeviceList,
        unread: UnreadTotal,
        mutes: MuteList,
        bus: OnlineDevices,
        queue: JobQueue,
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

    async def on_appended(self, appends: Appends) -> None:
        """Queue the jobs for durable messages, before their sends are answered: every
        recipient's devices read at once, then each message planned on its own, side by side."""
        messages = [(batch, appended) for batch, appended in appends
                    if batch.draft.kind is EntryKind.MESSAGE]
        recipients = list(dict.fromkeys(
            uid for batch, appended in messages for uid in appended.positions
            if uid != batch.draft.sender_id))
        if not recipients:
            return
        try:
            devices = await retrying(partial(self._accounts.devices_of, recipients))
        except Unavailable as exc:
            log.warning("no pushes for %d messages: devices unreadable (%s)", len(messages), exc)
            return
        await asyncio.gather(*(self._plan(batch, appended, devices)
                               for batch, appended in messages))

    async def _plan(self, batch: AppendBatch, appended: Appended,
                    devices: dict[int, list[Device]]) -> None:
        draft = batch.draft
        gate = asyncio.Semaphore(PLAN_CONCURRENCY)
        now_ms = self._clock.now_ms()
        positions = {uid: entry_id for uid, entry_id in appended.positions.items()
                     if uid != draft.sender_id}
        recipients = [(uid, positions[uid]) for uid, found in devices.items()
                      if uid in positions and any(d.push for d in found)]
        # Each recipient on its own: one whose lookups keep failing loses its push, the
        # others keep theirs (the send is stored and answered whatever happens here).
        found = await asyncio.gather(
            *(retrying(partial(self._targets, draft, uid, devices[uid], now_ms, gate))
              for uid, _ in recipients),
            return_exceptions=True)
        chosen: list[tuple[int, int, list[Device]]] = []
        for (uid, entry_id), targets in zip(recipients, found, strict=True):
            if isinstance(targets, BaseException):
                _no_push(uid, targets)
            elif targets:
                chosen.append((uid, entry_id, targets))
        if not chosen:
            return
        badges = asyncio.gather(
            *(retrying(partial(self._badge, uid, gate)) for uid, _, _ in chosen),
            return_exceptions=True)
        title, counts = await asyncio.gather(self._title(batch), badges)
        jobs: list[PushJob] = []
        for (uid, entry_id, targets), badge in zip(chosen, counts, strict=True):
            if isinstance(badge, BaseException):
                _no_push(uid, badge)
            else:
                jobs += push_jobs(draft, uid, entry_id, targets, title, badge, self._preview)
        if jobs:
            await retrying(partial(self._queue.enqueue, jobs))

    async def _targets(self, draft: EntryDraft, user_id: int, devices: list[Device],
                       now_ms: int, gate: asyncio.Semaphore) -> list[Device]:
        """The recipient's devices to push (``push_targets``), without counting a badge."""
        async with gate:
            muted, online = await asyncio.gather(
                self._mutes.muted(user_id, draft.conversation_id, now_ms),
                self._bus.online_devices(user_id),
            )
        return push_targets(draft, user_id, devices, online, muted)

    async def _badge(self, user_id: int, gate: asyncio.Semaphore) -> int:
        async with gate:
            return await self._unread.total_unread(user_id)


RETRIES = 3
"""Attempts of each store read or enqueue while planning (a blip must not cost a push)."""


async def retrying(work: Callable[[], Awaitable[T]], delay_s: float = 0.05) -> T:
    """``work()``, tried again after ``Unavailable`` (up to ``RETRIES`` attempts, backing off)."""
    for attempt in range(RETRIES - 1):
        try:
            return await work()
        except Unavailable:
            await asyncio.sleep(delay_s * 2**attempt)
    return await work()


def _no_push(user_id: int, error: BaseException) -> None:
    log.warning("no push for user %s: its lookups failed (%s)", user_id, error)
