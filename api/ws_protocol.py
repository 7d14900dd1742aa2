"""The WebSocket protocol uvicorn runs for ``/v1/ws``: websockets' sans-I/O implementation,
with per-message deflate that keeps no compression state between messages.

Deflate with context takeover keeps a compressor (window plus hash tables, ~32 KiB at
uvicorn's 12-bit windows) and a decompressor alive for the whole life of every socket, and
most sockets are idle most of the time: that was most of an idle connection's memory. Without
context takeover both ways, each message is compressed on its own and the zlib state exists
only while a message is being encoded or decoded, so compression stays available to clients
that ask for it (a page of entries is JSON with repeated keys and compresses well on its own)
at no cost per idle socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.server import ServerProtocol

WINDOW_BITS = 12
"""LZ77 window (4 KiB) while a message is compressed: frames are small."""


def per_message_deflate() -> ServerPerMessageDeflateFactory:
    """Deflate negotiated without context takeover in either direction."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=WINDOW_BITS,
        client_max_window_bits=WINDOW_BITS,
        compress_settings={"memLevel": 5},
    )


class ReceiveQueue:
    """What uvicorn's protocol uses of its receive queue (``put_nowait``, ``get``, ``empty``),
    over a list and one waiter: an ``asyncio.Queue`` allocates three deques (~2.3 KiB) up
    front, on every socket."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class Flag:
    """What uvicorn's protocol uses of ``asyncio.Event`` (``set``, ``clear``, ``is_set``,
    ``wait``), without the deque an Event allocates up front."""

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with ``per_message_deflate()`` and lighter
    per-socket queue and flag (``ReceiveQueue``, ``Flag``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        writable = Flag()
        if self.writable.is_set():
            writable.set()
        self.writable = writable  # type: ignore[assignment]
        if self.config.ws_per_message_deflate:
            self.conn = ServerProtocol(extensions=[per_message_deflate()],
                                       max_size=self.config.ws_max_size,
                                       logger=self.conn.logger)
