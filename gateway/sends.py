"""One socket's sends, pipelined: stored in the order they arrived, many per store call,
while the socket goes on reading frames.

A socket that waited for each send's answer before reading the next frame could have one
send in flight: a busy sender (a group chat) would be held to one message per store round
trip. Here ``submit`` queues the send and returns at once, unless ``max_pending`` sends are
still unanswered (then the socket reads no further until one is: a flood has nowhere to go).
One task per socket hands everything queued meanwhile to ``send_many`` in one call, which
stores the sends in order, and answers each with ``sent`` or ``error``, in order too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gateway import frames
from gateway.wire import receipt_json
from inbox.core.errors import DomainError
from inbox.core.models import Caller, SendReceipt
from inbox.messages.service import SendRequest

log = logging.getLogger(__name__)

SendOutcome = tuple[SendReceipt, bool] | DomainError
SendMany = Callable[[Caller, Sequence[SendRequest]], Awaitable[list[SendOutcome]]]
Reply = Callable[[dict[str, Any]], None]

MAX_PENDING = 64
"""Sends of one socket queued or being stored at once."""


def answer(request: SendRequest, outcome: SendOutcome, ref: str | None) -> dict[str, Any]:
    """The frame that answers a ``send``: ``sent`` with its receipt, or its ``error``."""
    if isinstance(outcome, DomainError):
        return frames.error_for(outcome, ref)
    reply = {"op": "sent", "client_msg_id": request.client_msg_id, **receipt_json(outcome[0])}
    return frames.with_ref(reply, ref)


class SendPipeline:
    """The queued sends of one socket and the task that stores them (see the module)."""

    def __init__(self, caller: Caller, send_many: SendMany, reply: Reply,
                 max_pending: int = MAX_PENDING) -> None:
        self._caller = caller
        self._send_many = send_many
        self._reply = reply
        self._queue: list[tuple[SendRequest, str | None]] = []
        self._slots = asyncio.Semaphore(max_pending)
        self._queued = asyncio.Event()
        self._idle = asyncio.Event()  # set while no batch is being stored
        self._idle.set()
        self._unanswered = 0
        self._answered = asyncio.Event()  # set while every submitted send is answered
        self._answered.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None  # started by the first send: idle
        # sockets (most of them) hold no task

    async def submit(self, request: SendRequest, ref: str | None) -> None:
        """Queue a send; waits only while ``max_pending`` sends are unanswered."""
        await self._slots.acquire()
        self._unanswered += 1
        self._answered.clear()
        self._queue.append((request, ref))
        self._queued.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ws-sends")

    async def _run(self) -> None:
        while not self._closing:
            await self._queued.wait()
            self._queued.clear()
            batch, self._queue = self._queue, []
            self._idle.clear()
            try:
                outcomes = await self._store(batch)
            finally:
                self._idle.set()
            for (request, ref), outcome in zip(batch, outcomes, strict=True):
                self._reply(answer(request, outcome, ref))
                self._slots.release()
                self._unanswered -= 1
            if not self._unanswered:
                self._answered.set()

    async def _store(self, batch: list[tuple[SendRequest, str | None]]) -> list[SendOutcome]:
        try:
            return await self._send_many(self._caller, [request for request, _ in batch])
        except Exception:  # a bug costs these sends their answers, not the connection
            log.exception("storing %d sends failed", len(batch))
            failed = DomainError("the server failed to store this send", code="internal")
            return [failed] * len(batch)

    async def settle(self, timeout_s: float) -> bool:
        """Wait (up to ``timeout_s``) until every send submitted so far, and any submitted
        meanwhile, has been answered; whether they all were. A drain calls it before closing
        the socket, so that what the client sent before ``goaway`` gets its answer."""
        try:
            await asyncio.wait_for(self._answered.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, flush_s: float = 2.0) -> None:
        """Stop: sends being stored get up to ``flush_s`` to finish (they may be stored
        already; their answers go out if the socket still can), queued ones are dropped
        unanswered (the client sends them again with the same ``client_msg_id``)."""
        self._closing = True
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), flush_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
