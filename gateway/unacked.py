"""Live deliveries that were never acked get pushed: the node side of ``gateway.ack_watch``.

Each socket holds a ``SocketWatch`` (its ``AckWatch``, stamped with this node's clock); acks
that reach this node (the ``ack`` op on any socket of the device, ``POST /v1/sync/ack``) are
applied to every watch of the device here; a loop finds, every tick, the entries not acked
within the window and those left by sockets that closed, and hands them to the push side
(``PushUnacked``, injected by the composition root: the gateway does not know ``push/``). An
ack that reached another node is not seen here: the push side checks the device's stored
cursor before it pushes, so an entry acked anywhere is never pushed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from gateway.ack_watch import AckWatch, newest_per_conversation
from idgen.clock import Clock
from idgen.tasks import stop_tasks
from inbox.core.models import Caller, Entry

log = logging.getLogger(__name__)

PushUnacked = Callable[[Mapping[Caller, Sequence[Entry]]], Awaitable[object]]
"""Push each device's entries (newest per conversation) that its sockets did not get acked,
unless the device's stored cursor shows them acked after all."""


def tick_s(window_ms: int) -> float:
    """How often the loop looks for overdue entries: a tenth of the window, within
    50 ms .. 1 s (a push comes at most that late)."""
    return min(max(window_ms / 10_000, 0.05), 1.0)


class SocketWatch:
    """One socket's ``AckWatch``, as its ``Connection`` feeds it."""

    __slots__ = ("_owner", "caller", "tracker")

    def __init__(self, owner: UnackedWatch, caller: Caller, tracker: AckWatch) -> None:
        self._owner = owner
        self.caller = caller
        self.tracker = tracker

    def landed(self, entries: Sequence[Entry], head: int) -> None:
        """The socket was handed ``entries``; ``head`` is the inbox head read at connect."""
        self.tracker.start_at(head)
        if self.tracker.delivered(entries, self._owner.now_ms()):
            self._owner.active.add(self)

    def closed(self) -> None:
        """The socket is gone: what it did not get acked is pushed on the next tick."""
        self.tracker.close()
        if not len(self.tracker):
            self._owner.forget(self)


class UnackedWatch:
    """This node's socket watches and the loop that pushes what they were not acked (see the
    module docstring). ``window_ms``: how long a live delivery may stay un-acked."""

    def __init__(self, push: PushUnacked, clock: Clock, window_ms: int) -> None:
        self._push = push
        self._clock = clock
        self.window_ms = window_ms
        self._by_device: dict[int, list[SocketWatch]] = {}  # lists: most hold one
        self.active: set[SocketWatch] = set()  # the watches holding entries
        self._task: asyncio.Task[None] | None = None
        self._pushing: set[asyncio.Future[None]] = set()  # pushes in flight

    def now_ms(self) -> int:
        return int(self._clock.monotonic() * 1000)

    def watch(self, caller: Caller) -> SocketWatch:
        """A new socket of ``caller``'s device: its watch."""
        watch = SocketWatch(self, caller, AckWatch(caller.user_id, self.window_ms))
        self._by_device.setdefault(caller.device_id, []).append(watch)
        return watch

    def held(self) -> int:
        """Socket watches this node holds: open sockets', and closed ones' not flushed yet."""
        return sum(len(watches) for watches in self._by_device.values())

    def acked(self, device_id: int, cursor: int) -> None:
        """The device acked up to ``cursor``: none of its sockets here pushes what that covers
        (including sockets that closed and were not flushed yet)."""
        for watch in self._by_device.get(device_id, ()):
            watch.tracker.acked(cursor)

    def forget(self, watch: SocketWatch) -> None:
        """Drop a closed socket's watch that holds nothing more."""
        self.active.discard(watch)
        watches = self._by_device.get(watch.caller.device_id)
        if watches is not None and watch in watches:
            watches.remove(watch)
            if not watches:
                del self._by_device[watch.caller.device_id]

    async def flush(self, *, everything: bool = False) -> int:
        """Push what is due now (``everything``: all that is watched, the node is going
        away); how many entries (newest per conversation) were handed to the push side."""
        now = self.now_ms()
        taken: dict[Caller, list[Entry]] = {}
        for watch in list(self.active):
            entries = watch.tracker.due(now, everything=everything)
            if entries:
                taken.setdefault(watch.caller, []).extend(entries)
            if not len(watch.tracker):
                self.active.discard(watch)
                if watch.tracker.closed:
                    self.forget(watch)
        if not taken:
            return 0
        # Two sockets of one device may both hand the same conversation: one push.
        collapsed = {caller: newest_per_conversation(entries)
                     for caller, entries in taken.items()}
        # Taken from the watches: the push must not be cut short by ``close`` cancelling
        # the loop, or they would be lost. ``close`` waits for it instead.
        push = asyncio.ensure_future(self._pushed(collapsed))
        self._pushing.add(push)
        push.add_done_callback(self._pushing.discard)
        await asyncio.shield(push)
        return sum(len(entries) for entries in collapsed.values())

    async def _pushed(self, unacked: dict[Caller, list[Entry]]) -> None:
        try:
            await self._push(unacked)
        except Exception:  # a store outage costs these pushes, never the loop
            log.exception("could not push %d devices' un-acked entries", len(unacked))

    async def start(self) -> None:
        """Run ``flush`` every tick (``clock.sleep``) until ``close``."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="unacked-pushes")

    async def close(self) -> None:
        """Stop the loop and push everything still watched: nobody here will later."""
        await stop_tasks(self._task)
        self._task = None
        await asyncio.gather(*self._pushing)
        await self.flush(everything=True)

    async def _run(self) -> None:
        pause = tick_s(self.window_ms)
        while True:
            await self._clock.sleep(pause)
            try:
                await self.flush()
            except Exception:  # a bug must not stop the pushes for everyone
                log.exception("un-acked push flush failed")
