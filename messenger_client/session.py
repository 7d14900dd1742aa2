"""The client's state shared across sockets (``Core``) and the work on one socket
(``LiveSession``): sync, hand entries and events to the app, drain the outbox, ack.

One socket at a time; ``Core`` outlives them, so a reconnect resumes from the last entry
queued for the app and resends the outbox message that was in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from messenger_client import frames
from messenger_client.connection import Link
from messenger_client.errors import ApiError, MessengerError
from messenger_client.events import Connected, Event, Presence, SendFailed, Sent, Stopped, Typing
from messenger_client.models import Receipt
from messenger_client.outbox import Outbox
from messenger_client.profile import Profile
from messenger_client.reconnect import Closed
from messenger_client.stream import InboxStream

SEND_REF = "send:"
OUTCOMES_KEPT = 10_000
ACK_DELAY_S = 0.05  # commits within this window share one ack frame


@dataclass
class Core:
    """Everything that survives a reconnect."""

    profile: Profile
    stream: InboxStream
    outbox: Outbox
    receive: bool
    clock: Callable[[], float]
    events: asyncio.Queue[Event | Stopped]
    waiters: dict[str, asyncio.Future[Receipt]] = field(default_factory=dict)
    outcomes: OrderedDict[str, Receipt | ApiError] = field(default_factory=OrderedDict)
    """How the latest sends ended, for a ``wait_sent`` that comes after the answer."""
    outbox_changed: asyncio.Event = field(default_factory=asyncio.Event)
    ack_wanted: asyncio.Event = field(default_factory=asyncio.Event)

    async def emit(self, event: Event | Stopped) -> None:
        """Queue an event for ``Client.events()`` (waits while the app is behind)."""
        if self.receive:
            await self.events.put(event)

    def waiter(self, client_msg_id: str) -> asyncio.Future[Receipt]:
        """The future answered when this outbox message is sent or refused (at once if it
        already was); ``MessengerError`` for a message this client never queued."""
        fut = self.waiters.get(client_msg_id)
        if fut is not None:
            return fut
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_retrieve)
        outcome = self.outcomes.get(client_msg_id)
        if isinstance(outcome, Receipt):
            fut.set_result(outcome)
        elif outcome is not None:
            fut.set_exception(outcome)
        elif client_msg_id in {item.client_msg_id for item in self.outbox.pending()}:
            self.waiters[client_msg_id] = fut
        else:
            raise MessengerError(f"no message {client_msg_id!r} in the outbox")
        return fut

    def _settle(self, client_msg_id: str, outcome: Receipt | ApiError) -> None:
        self.outcomes[client_msg_id] = outcome
        while len(self.outcomes) > OUTCOMES_KEPT:
            self.outcomes.popitem(last=False)
        fut = self.waiters.pop(client_msg_id, None)
        if fut is not None and not fut.done():
            if isinstance(outcome, Receipt):
                fut.set_result(outcome)
            else:
                fut.set_exception(outcome)

    def reload_outbox(self) -> None:
        """Take in messages other processes sharing the profile queued."""
        for item in self.profile.outbox():
            self.outbox.add(item)

    async def on_sent(self, receipt: Receipt) -> None:
        item = self.outbox.on_sent(receipt.client_msg_id)
        self.profile.remove(receipt.client_msg_id)
        self._settle(receipt.client_msg_id, receipt)
        self.outbox_changed.set()
        if item is not None:
            await self.emit(Sent(receipt))

    async def on_send_error(self, client_msg_id: str, error: ApiError) -> None:
        dropped = self.outbox.on_error(client_msg_id, error, self.clock())
        self.outbox_changed.set()
        if dropped is None:
            return
        self.profile.remove(client_msg_id)
        self._settle(client_msg_id, error)
        await self.emit(SendFailed(client_msg_id, error))

    def commit(self, entry_id: int) -> None:
        """The app handled entries up to ``entry_id``: persist the cursor, ack it soon."""
        if self.stream.commit(entry_id):
            self.profile.commit_cursor(entry_id)
            self.ack_wanted.set()

    def fail_waiters(self, error: MessengerError) -> None:
        for fut in self.waiters.values():
            if not fut.done():
                fut.set_exception(error)
        self.waiters.clear()


class LiveSession:
    """The work on one open socket; ``run`` returns how the socket ended."""

    def __init__(self, link: Link, core: Core) -> None:
        self._link = link
        self._core = core

    async def run(self) -> Closed:
        core = self._core
        core.reload_outbox()
        if core.receive:
            await self._link.send(frames.sync(core.stream.start_sync()))
        helpers = [asyncio.create_task(job) for job in
                   (self._link.keep_alive(), self._drain_outbox(), self._ack())]
        try:
            await self._read()
        finally:
            for task in helpers:
                task.cancel()
            # gather, not suppress(CancelledError): a cancellation of this task arriving
            # meanwhile must not be swallowed (the client would reconnect instead of stopping).
            await asyncio.gather(*helpers, return_exceptions=True)
            core.outbox.on_disconnect()
            core.stream.on_disconnect()
            await self._link.close()
        return self._link.closed()

    async def _read(self) -> None:
        core = self._core
        async for frame in self._link.frames():
            if isinstance(frame, frames.Entries):
                for entry in core.stream.on_frame(frame.entries):
                    await core.emit(entry)
            elif isinstance(frame, frames.SyncStarted):
                if core.stream.on_sync_started(frame.cur_max_msg_id):
                    core.ack_wanted.set()  # the server learns what was handled while away
                    await core.emit(Connected(self._link.hello.session_id))
            elif isinstance(frame, frames.SentFrame):
                await core.on_sent(frame.receipt)
            elif isinstance(frame, frames.ErrorFrame):
                if frame.ref is not None and frame.ref.startswith(SEND_REF):
                    await core.on_send_error(frame.ref.removeprefix(SEND_REF), frame.error)
            elif isinstance(frame, Presence | Typing):
                await core.emit(frame)

    async def _drain_outbox(self) -> None:
        """Send the oldest pending message whenever nothing is in flight."""
        core = self._core
        while True:
            core.outbox_changed.clear()
            item = core.outbox.next_to_send(core.clock())
            if item is not None:
                text = frames.send(item.client_msg_id, item.body, to_user=item.to_user,
                                   to_group=item.to_group, attachments=item.attachments,
                                   ref=SEND_REF + item.client_msg_id)
                if not await self._link.send(text):
                    return
                continue
            wake = core.outbox.wake_at()
            timeout = None if wake is None else max(0.0, wake - core.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await core.outbox_changed.wait()

    async def _ack(self) -> None:
        """Tell the server how far the app got, a few commits at a time."""
        core = self._core
        acked: int | None = None
        while True:
            await core.ack_wanted.wait()
            await asyncio.sleep(ACK_DELAY_S)
            core.ack_wanted.clear()
            cursor = core.stream.committed
            if cursor != acked and cursor > 0:
                if not await self._link.send(frames.ack(cursor)):
                    return
                acked = cursor


def _retrieve(fut: asyncio.Future[Receipt]) -> None:
    """Mark a send's error as seen even when its caller stopped waiting."""
    if not fut.cancelled():
        fut.exception()
