"""Client frame handlers: parse the frame's fields, call a service, queue the reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from gateway import frames
from gateway.connection import Connection
from gateway.frames import (
    ClientFrame,
    optional_id,
    optional_ids,
    optional_str,
    require_id,
    require_str,
)
from inbox.core.models import Caller
from inbox.messages.service import SendRequest
from sync.metrics import ACKS, SYNCS
from sync.service import SyncService

Handler = Callable[[Connection, ClientFrame], Awaitable[None]]
MarkRead = Callable[[Caller, str, int], Awaitable[bool]]


class FrameHandlers:
    """The client ops and their handlers, as one table fixed at construction: the core ops
    of this class, and those that features bring (``read``, ``typing``)."""

    def __init__(self, sync: SyncService, features: Mapping[str, Handler]) -> None:
        self._sync = sync
        self._ops: dict[str, Handler] = {
            "ping": self.op_ping, "sync": self.op_sync, "ack": self.op_ack,
            "send": self.op_send, **features,
        }

    async def handle(self, conn: Connection, frame: ClientFrame) -> None:
        """Run the op's handler; DomainErrors are turned into ``error`` frames by the caller."""
        handler = self._ops.get(frame.op)
        if handler is None:
            raise frames.FrameError(f"op {frame.op!r} is not served", code="unknown_op",
                                    ref=frame.ref)
        await handler(conn, frame)

    async def op_ping(self, conn: Connection, frame: ClientFrame) -> None:
        conn.send(frames.with_ref({"op": "pong"}, frame.ref))

    async def op_sync(self, conn: Connection, frame: ClientFrame) -> None:
        SYNCS.labels("ws").inc()
        cursor = require_id(frame, "cur_max_msg_id")
        conn.delivery.on_sync(cursor)  # no await until the marker is queued: nothing between
        conn.send(frames.with_ref(frames.sync_started(cursor), frame.ref))
        conn.schedule_pump()

    async def op_ack(self, conn: Connection, frame: ClientFrame) -> None:
        ACKS.labels("ws").inc()
        await self._sync.ack(conn.caller.device_id, require_id(frame, "cur_max_msg_id"))

    async def op_send(self, conn: Connection, frame: ClientFrame) -> None:
        """Queue the send on the socket's pipeline (``gateway.sends``): its ``sent`` (or
        ``error``) comes once it is stored, while further frames are read meanwhile."""
        request = SendRequest(
            body=optional_str(frame, "body", ""),
            client_msg_id=require_str(frame, "client_msg_id"),
            to_user=optional_id(frame, "to_user"),
            to_group=optional_id(frame, "to_group"),
            attachments=optional_ids(frame, "attachments"),
        )
        await conn.submit_send(request, frame.ref)


def read_handler(mark_read: MarkRead) -> Handler:
    """The ``read`` op (``{conversation_id, up_to_msg_id}``), a feature of ``FrameHandlers``:
    no reply frame; the ``read`` entry reaches the reader's devices through their inboxes."""

    async def op_read(conn: Connection, frame: ClientFrame) -> None:
        await mark_read(conn.caller, require_str(frame, "conversation_id"),
                        require_id(frame, "up_to_msg_id"))

    return op_read
