"""Presence, the I/O side: feeds the tracker from connection events and the bus registry,
sends its notices to contacts through ``Hub.relay`` (so they cross nodes), and answers
``GET /v1/presence``.

Who is online is the bus registry's answer (any device with a live connection on any node);
``last_seen`` of an offline user is the latest ``last_seen`` of its devices, which this
service records when a device connects and disconnects (and the bus, for devices of a node
that died). Presence is advisory: a failure here is logged and costs a notice, never a
connection or a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.bus import LiveBus
from gateway.hub import Hub
from gateway.presence import Notice, PresenceTracker, Status, presence_frame
from gateway.presence_contacts import Contacts
from idgen.clock import Clock
from idgen.tasks import stop_tasks
from inbox.core.models import Caller, Device

log = logging.getLogger(__name__)

LOOKUP_CONCURRENCY = 16  # store reads in flight for one presence query


class SeenDevices(Protocol):
    """Where device ``last_seen`` times live (``inbox.accounts.port.AccountStore``)."""

    async def touch(self, device_id: int, last_seen_ms: int) -> None:
        """Record when the device was last connected."""
        ...

    async def list_devices(self, user_id: int) -> list[Device]:
        """The user's active devices."""
        ...


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    """One user's presence: online now (``last_seen`` is now), or offline since
    ``last_seen_ms`` (None: never connected)."""

    status: Status
    last_seen_ms: int | None


def presence_window_ms(heartbeat_interval_ms: int) -> int:
    """The settle / coalescing window: one heartbeat interval, at most 5 s, so that a
    reconnecting client is not reported offline and a clean close shows within seconds."""
    return max(1, min(heartbeat_interval_ms, 5_000))


class PresenceService:
    """Connection events in, ``presence`` frames out (see the module docstring).

    ``connected``/``disconnected`` must be called right after the hub registered or dropped
    the connection, with no await in between, so the tracker sees transitions in the order
    the registry made them. Their I/O (``last_seen``, notices) runs in background tasks
    chained per user, so it never delays a socket and one user's notices keep their order.
    """

    def __init__(self, bus: LiveBus, hub: Hub, contacts: Contacts, devices: SeenDevices,
                 clock: Clock, window_ms: int) -> None:
        self._bus = bus
        self._hub = hub
        self._contacts = contacts
        self._devices = devices
        self._clock = clock
        self.tracker = PresenceTracker(clock, settle_ms=window_ms, min_gap_ms=window_ms)
        self._tick_s = min(max(window_ms / 5000, 0.02), 0.25)
        self._task: asyncio.Task[None] | None = None
        self._chains: dict[int, asyncio.Task[None]] = {}
        bus.on_expired(self._expired)

    def connected(self, caller: Caller, came_online: bool) -> None:
        """A socket of ``caller`` registered; ``came_online``: no device was online before."""
        now = self._clock.now_ms()
        if came_online:
            notice = self.tracker.came_online(caller.user_id)
        else:
            self.tracker.still_online(caller.user_id)
            notice = None
        self._later(caller.user_id, notice, [caller.device_id], now)

    def disconnected(self, caller: Caller, went_offline: bool, *, silent: bool) -> None:
        """A socket of ``caller`` closed; ``went_offline``: no device is online any more;
        ``silent``: it was dropped for heartbeat silence (no settle window)."""
        now = self._clock.now_ms()
        uid = caller.user_id
        notice = None
        if went_offline:  # the notice's last_seen is exactly what is stored
            notice = self.tracker.went_offline(uid, settle=not silent, at_ms=now)
        elif not self._hub.connections(uid) and not self.tracker.pending(uid):
            self.tracker.forget(uid)  # its other devices' node is in charge now
        self._later(uid, notice, [caller.device_id], now)

    async def statuses(self, user_ids: Iterable[int]) -> dict[int, PresenceInfo]:
        """Each user's presence now, from the registry and the devices' ``last_seen``."""
        ids = list(dict.fromkeys(user_ids))
        online = await self._bus.online_users(ids)
        now = self._clock.now_ms()
        seen = await self._last_seen_many([uid for uid in ids if uid not in online])
        return {uid: PresenceInfo(Status.ONLINE, now) if uid in online
                else PresenceInfo(Status.OFFLINE, seen.get(uid)) for uid in ids}

    async def flush(self, *, everything: bool = False) -> None:
        """Send the held-back changes that are due (``everything``: all of them), after
        re-reading the registry."""
        due = self.tracker.due(everything=everything)
        if not due:
            return
        try:
            online = await self._bus.online_users(due)
        except Exception as exc:  # registry unreachable: trust this node's own view
            log.warning("presence could not read the registry: %s", exc)
            online = {uid for uid in due if self._hub.connections(uid)}
        for uid in due:
            status = Status.ONLINE if uid in online else Status.OFFLINE
            self._later(uid, self.tracker.confirm(uid, status))
            if status is Status.ONLINE and not self._hub.connections(uid):
                self.tracker.forget(uid)

    async def idle(self) -> None:
        """Wait until every background touch and notice started so far is done."""
        while self._chains:
            await asyncio.wait(list(self._chains.values()))

    async def start(self) -> None:
        """Run ``flush`` every tick until ``close``."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="presence-flush")

    async def close(self) -> None:
        """Stop flushing; settle what is held back now (this node will not be around to),
        so users whose sockets closed with the node and did not reconnect go offline."""
        if self._task is not None:
            await stop_tasks(self._task)
            self._task = None
            try:
                await self.flush(everything=True)
            except Exception:
                log.exception("final presence flush failed")
        await self.idle()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            try:
                await self.flush()
            except Exception:  # a bug must not stop presence for everyone
                log.exception("presence flush failed")

    async def _expired(self, user_id: int, device_ids: set[int], last_seen_ms: int) -> None:
        """The bus found the user's last connections on a dead node: offline now."""
        notice = self.tracker.went_offline(user_id, settle=False, at_ms=last_seen_ms)
        self._later(user_id, notice, sorted(device_ids), last_seen_ms)

    def _later(self, user_id: int, notice: Notice | None, touch: Sequence[int] = (),
               at_ms: int = 0) -> None:
        """After the user's earlier background work: record ``at_ms`` as the ``last_seen``
        of the devices ``touch``, then announce ``notice``."""
        if not touch and notice is None:
            return
        previous = self._chains.get(user_id)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            await self._touch(touch, at_ms)
            if notice is not None:
                await self._announce(notice)

        task = asyncio.get_running_loop().create_task(run(), name=f"presence-{user_id}")
        self._chains[user_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._chains.get(user_id) is finished:
                del self._chains[user_id]

        task.add_done_callback(done)

    async def _announce(self, notice: Notice) -> None:
        try:
            audience = await self._contacts.contacts_of(notice.user_id)
            audience.discard(notice.user_id)
            if audience:
                frame = presence_frame(notice)
                await self._hub.relay({uid: frame for uid in audience})
        except Exception as exc:  # advisory: a lost notice is fixed by the next change
            log.warning("presence notice for user %s failed: %s", notice.user_id, exc)

    async def _touch(self, device_ids: Sequence[int], at_ms: int) -> None:
        for device_id in device_ids:
            try:
                await self._devices.touch(device_id, at_ms)
            except Exception as exc:
                log.warning("could not record last_seen of device %s: %s", device_id, exc)

    async def _last_seen_many(self, user_ids: list[int]) -> dict[int, int]:
        gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

        async def one(uid: int) -> int | None:
            async with gate:
                seen = [d.last_seen_ms for d in await self._devices.list_devices(uid)
                        if d.last_seen_ms is not None]
            return max(seen, default=None)

        found = await asyncio.gather(*(one(uid) for uid in user_ids))
        return {uid: ms for uid, ms in zip(user_ids, found, strict=True) if ms is not None}
