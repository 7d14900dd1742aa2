"""A real uvicorn serving one WebSocket endpoint on a free loopback port, for gateway tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


@contextlib.asynccontextmanager
async def serving(endpoint: Callable[[WebSocket], Awaitable[None]]) -> AsyncIterator[str]:
    """Serve ``endpoint`` at ``/ws``; yields its ``ws://`` URL, stops the server on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # clients may connect before uvicorn starts accepting
    port = sock.getsockname()[1]
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", ws="websockets-sansio",
                                           log_level="critical"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await task
        sock.close()
