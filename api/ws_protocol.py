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


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol with ``per_message_deflate()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.ws_per_message_deflate:
            self.conn = ServerProtocol(extensions=[per_message_deflate()],
                                       max_size=self.config.ws_max_size,
                                       logger=self.conn.logger)
