"""One live WebSocket: a bounded outgoing queue drained by its own task, and the entry pump.

Fan-out calls ``send`` without awaiting; when the queue is full the client is too slow and is
disconnected (it reconnects and syncs), so it never slows anyone else down. A store read that
fails is retried every ``pump_retry_s`` while the socket is open, and the client is told once
(an ``unavailable`` error frame), so a ``sync`` is never dropped in silence. A read that did
not yet show an entry a live event announced (``Delivery.lagging``) is retried likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from starlette.websockets import WebSocket

from gateway import frames
from gateway.delivery import Delivery
from gateway.metrics import FRAMES_SENT, SLOW_READER_DROPS, WS_CLOSES
from gateway.outbox import Outbox
from gateway.sends import SendMany, SendPipeline
from gateway.unacked import SocketWatch
from gateway.wire import entry_from_json, entry_json
from idgen.tasks import stop_tasks
from inbox.core.models import Caller, Entry, InboxPage
from inbox.messages.service import SendRequest

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN = 1013  # slow consumer / server overload: reconnect and sync
CLOSE_HEARTBEAT = 4000
CLOSE_UNAUTHORIZED = 4001

ReadInbox = Callable[[int, int], Awaitable[InboxPage]]
PUMP_RETRY_S = 1.0


class State(Enum):
    """A socket's life, moving only forwards: frames are queued from ``CONNECTING`` on and go
    out once it is ``OPEN`` (registered); ``CLOSING`` flushes what is queued, then closes."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_NEXT: dict[State, frozenset[State]] = {
    State.CONNECTING: frozenset({State.OPEN, State.CLOSING, State.CLOSED}),
    State.OPEN: frozenset({State.CLOSING, State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class Connection:
    """The I/O side of one socket: what to send and when to close."""

    def __init__(self, ws: WebSocket, caller: Caller, read_inbox: ReadInbox, queue_size: int,
                 pump_retry_s: float = PUMP_RETRY_S, send_many: SendMany | None = None,
                 watch: SocketWatch | None = None) -> None:
        """``send_many`` stores this socket's ``send`` frames (None: it takes none);
        ``watch`` is told which entries it was handed, until they are acked
        (``gateway.unacked``; None: live deliveries are final)."""
        self.ws = ws
        self.caller = caller
        self.session_id = uuid.uuid4().hex
        self.delivery = Delivery()
        self._read_inbox = read_inbox
        self._outbox: Outbox[str | None] = Outbox(queue_size)
        self.state = State.CONNECTING
        self._close_code = CLOSE_GOING_AWAY
        self._close_reason = ""
        self._pump_task: asyncio.Task[None] | None = None
        self._pump_retry_s = pump_retry_s
        self._pump_retry: asyncio.TimerHandle | None = None
        self._pump_failing = False
        # Runs while frames wait (none on an idle socket); ``start`` lets the first ones go.
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None  # closing a slow client, referenced
        self._started = False
        self._send_many = send_many
        self._sends: SendPipeline | None = None  # made by the first send: most sockets idle
        self._watch = watch

    async def submit_send(self, request: SendRequest, ref: str | None) -> None:
        """Queue a ``send`` on this socket's pipeline (``gateway.sends``)."""
        if self._send_many is None:
            raise frames.FrameError("this socket takes no sends", code="unknown_op", ref=ref)
        if self._sends is None:
            self._sends = SendPipeline(self.caller, self._send_many, self.send)
        await self._sends.submit(request, ref)

    def start(self) -> None:
        """Start sending: frames queued until now go out first, in order (the gateway starts
        a socket once it is registered, so a client that got ``hello`` is reachable)."""
        if self.state is State.CONNECTING:
            self._move(State.OPEN)
        self._started = True
        self._kick()

    def _kick(self) -> None:
        """Start the writer if frames wait, sending may begin and none runs."""
        if self._started and self._writer is None and len(self._outbox):
            self._writer = asyncio.create_task(self._write_loop(),
                                               name=f"ws-writer-{self.session_id}")

    @property
    def closing(self) -> bool:
        return self.state in (State.CLOSING, State.CLOSED)

    def _move(self, to: State) -> None:
        if to not in _NEXT[self.state]:
            raise RuntimeError(f"socket {self.session_id}: {self.state.value} -> {to.value}")
        self.state = to

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame; a full queue means a slow client, which is disconnected."""
        if self.closing:
            return
        if not self._outbox.put(frames.encode(frame)):
            log.info("disconnecting slow client %s", self.session_id)
            SLOW_READER_DROPS.inc()
            WS_CLOSES.labels(str(CLOSE_TRY_AGAIN)).inc()
            self._move(State.CLOSING)
            self._close_code, self._close_reason = CLOSE_TRY_AGAIN, "too slow; reconnect and sync"
            if self._writer is not None:
                self._writer.cancel()
            self._closer = asyncio.get_running_loop().create_task(self._close_now())
            return
        FRAMES_SENT.labels(frame["op"]).inc()
        self._kick()

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued have gone out."""
        if self.closing:
            return
        WS_CLOSES.labels(str(code)).inc()
        self._move(State.CLOSING)
        self._close_code, self._close_reason = code, reason
        self._outbox.put(None, force=True)
        self._kick()

    async def go_away(self, reconnect_after_ms: int, flush_s: float) -> None:
        """The node drains: ``goaway``, then the answers of the sends in flight (they get up
        to ``flush_s``), then a ``1001`` close once those frames are out."""
        self.send(frames.goaway(reconnect_after_ms))
        if self._sends is not None and not await self._sends.settle(flush_s):
            log.warning("session %s closes with sends unanswered", self.session_id)
        self.close(CLOSE_GOING_AWAY, "server draining; reconnect after reconnect_after_ms")

    def on_entry(self, entry: dict[str, Any], entry_id: int, prev: int) -> None:
        """A live entry for this user landed: send it now and/or catch up from the store.

        It is watched from now, whether it goes out at once, after a store read, or not at
        all because the socket is closing: until acked it may still need a push."""
        if self._watch is not None:
            self._landed([entry_from_json(entry)])
        if self.delivery.on_live(entry_id, prev):
            self.send(frames.entries([entry], entry_id))
        self.schedule_pump()

    def schedule_pump(self) -> None:
        """Read the store after the delivery cursor (one pump at a time)."""
        if self.delivery.needs_pump() and (self._pump_task is None or self._pump_task.done()):
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while self.delivery.needs_pump() and not self.closing:
            ticket = self.delivery.begin_pump()
            try:
                page = await self._read_inbox(self.caller.user_id, ticket.cursor)
            except Exception:
                log.warning("pump for %s failed; retrying", self.session_id)
                self.delivery.abort_pump()
                if not self._pump_failing:
                    self.send(frames.error("unavailable",
                                           "the inbox cannot be read now; retrying"))
                self._pump_failing = True
                self._retry_later()
                return
            self._pump_failing = False
            fresh: list[Entry] = self.delivery.end_pump(ticket, page.entries, page.has_more)
            if fresh:
                self._landed(fresh)
                self.send(frames.entries([entry_json(e) for e in fresh], fresh[-1].id))
        if self.delivery.lagging():  # an announced entry is not visible yet: look again
            self._retry_later()

    def _landed(self, entries: list[Entry]) -> None:
        if self._watch is not None and self.delivery.head is not None:
            self._watch.landed(entries, self.delivery.head)

    def _retry_later(self) -> None:
        if self._pump_retry is None and not self.closing:
            self._pump_retry = asyncio.get_running_loop().call_later(
                self._pump_retry_s, self._retry_pump)

    def _retry_pump(self) -> None:
        self._pump_retry = None
        if not self.closing:
            self.delivery.recheck()
            self.schedule_pump()

    async def _write_loop(self) -> None:
        """Send what waits, in order, until nothing does (frames queued meanwhile included);
        the ``None`` that ``close`` queues closes the socket."""
        try:
            while len(self._outbox):
                for text in self._outbox.drain():
                    if text is None:
                        await self._close_now()
                        return
                    await self.ws.send_text(text)
        except Exception:  # the peer went away; the receive loop notices and cleans up
            return
        finally:
            self._writer = None

    async def _close_now(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(self._close_code, self._close_reason)

    async def finish(self, flush_s: float = 2.0) -> None:
        """Stop the connection's tasks; a requested close first flushes what is queued."""
        if self._watch is not None:  # what it was handed and did not ack gets pushed
            self._watch.closed()
        if self._pump_retry is not None:
            self._pump_retry.cancel()
        if self._sends is not None:
            await self._sends.close(flush_s)
        self.start()  # a socket refused before it started still says why
        writer = self._writer
        if not self.closing:  # the peer left: nothing more to send
            self._move(State.CLOSING)
            if writer is not None:
                writer.cancel()
        if writer is not None:
            # The writer ends on its own once the close went out (or the peer left); wait()
            # neither raises when the writer was cancelled nor swallows our own cancellation.
            await asyncio.wait({writer}, timeout=flush_s)
        await stop_tasks(writer, self._pump_task, self._closer)
        self._move(State.CLOSED)


