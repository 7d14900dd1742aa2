"""Push jobs for live deliveries that were never acked (the gateway's ``PushUnacked``).

A device that was online when a message landed got it over a socket, not as a push; if the
socket was half-open (a frozen app, a network gone) that delivery never arrived. The gateway
hands over, per device, the entries its sockets did not get acked within the ack window or
left un-acked when they closed, newest per conversation. Here they are checked against the
device's stored cursor (an ack on another node or over REST counts) and planned as at append
time: same checks (push token, mute, not the sender's), same payload and badge, and the same
job ids (``job_id_for(device, entry)``), so the queue's dedup never lets an entry that the
append-time planning already pushed be pushed twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from functools import partial

from idgen.clock import Clock
from inbox.core.errors import Unavailable
from inbox.core.models import AppendBatch, Caller, Device, Entry
from push.decision import push_jobs, unacked_to_push
from push.job import PushJob
from push.metrics import UNACKED_JOBS
from push.planner import (
    PLAN_CONCURRENCY,
    DeviceList,
    JobQueue,
    MuteList,
    Title,
    UnreadTotal,
    retrying,
)

log = logging.getLogger(__name__)

USERS_PER_READ = 256
"""Users whose devices one ``devices_of`` call reads (a tick may hand over many)."""


class UnackedPusher:
    """Turns un-acked live deliveries into push jobs (see the module docstring)."""

    def __init__(self, accounts: DeviceList, unread: UnreadTotal, mutes: MuteList,
                 queue: JobQueue, clock: Clock, title: Title, preview: bool) -> None:
        self._accounts = accounts
        self._unread = unread
        self._mutes = mutes
        self._queue = queue
        self._clock = clock
        self._title = title
        self._preview = preview

    async def __call__(self, unacked: Mapping[Caller, Sequence[Entry]]) -> int:
        """Queue the pushes for each device's un-acked entries; how many jobs were new."""
        callers = list(unacked)
        queued = 0
        for start in range(0, len(callers), USERS_PER_READ):
            chunk = callers[start:start + USERS_PER_READ]
            queued += await self._plan({c: list(unacked[c]) for c in chunk})
        return queued

    async def _plan(self, unacked: dict[Caller, list[Entry]]) -> int:
        users = list(dict.fromkeys(caller.user_id for caller in unacked))
        try:
            devices = await retrying(partial(self._accounts.devices_of, users))
        except Unavailable as exc:
            log.warning("no pushes for %d un-acked devices: devices unreadable (%s)",
                        len(unacked), exc)
            return 0
        gate = asyncio.Semaphore(PLAN_CONCURRENCY)
        now_ms = self._clock.now_ms()
        chosen = [(caller, found) for caller, entries in unacked.items()
                  if (found := unacked_to_push(caller.device_id, caller.user_id,
                                               devices.get(caller.user_id, []), entries))]
        planned = await asyncio.gather(
            *(retrying(partial(self._jobs, caller.user_id, device, entries, now_ms, gate))
              for caller, (device, entries) in chosen),
            return_exceptions=True)
        jobs: list[PushJob] = []
        for (caller, _), result in zip(chosen, planned, strict=True):
            if isinstance(result, BaseException):
                log.warning("no push for device %s: its lookups failed (%s)",
                            caller.device_id, result)
            else:
                jobs += result
        if not jobs:
            return 0
        queued = await retrying(partial(self._queue.enqueue, jobs))
        UNACKED_JOBS.inc(queued)
        return queued

    async def _jobs(self, user_id: int, device: Device, entries: list[Entry], now_ms: int,
                    gate: asyncio.Semaphore) -> list[PushJob]:
        """The device's jobs: one per conversation not muted, with the user's badge."""
        async with gate:
            muted = await asyncio.gather(
                *(self._mutes.muted(user_id, e.draft.conversation_id, now_ms) for e in entries))
        entries = [e for e, mute in zip(entries, muted, strict=True) if not mute]
        if not entries:
            return []
        async with gate:
            badge, titles = await asyncio.gather(
                self._unread.total_unread(user_id),
                asyncio.gather(*(self._title(AppendBatch(e.draft, (user_id,)))
                                 for e in entries)))
        return [job for entry, title in zip(entries, titles, strict=True)
                for job in push_jobs(entry.draft, user_id, entry.id, [device], title, badge,
                                     self._preview)]
