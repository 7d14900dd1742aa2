"""A scripted WebSocket gateway: each connection plays the next scene (a close code, a
goaway, silence...) so the client's handling of each can be watched. The real server's
behaviour is covered by the end-to-end tests; this one does what the real one rarely does on
demand."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

Scene = Callable[[ServerConnection, "Gateway"], Awaitable[None]]


@dataclass
class Gateway:
    scenes: list[Scene]
    heartbeat_interval_ms: int = 1000
    received: list[dict[str, Any]] = field(default_factory=list)
    connected_at: list[float] = field(default_factory=list)
    refuse_with: tuple[int, str] | None = None
    _server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> Gateway:
        self._server = await serve(self._handle, "127.0.0.1", 0,
                                   process_request=self._refuse, ping_interval=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _refuse(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.refuse_with is None:
            return None
        status, code = self.refuse_with
        body = json.dumps({"error": {"code": code, "message": "refused"}}).encode()
        return Response(status, HTTPStatus(status).phrase,
                        Headers({"Content-Type": "application/json"}), body)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connected_at.append(asyncio.get_running_loop().time())
        scene = self.scenes.pop(0) if len(self.scenes) > 1 else self.scenes[0]
        await ws.send(json.dumps({"op": "hello", "session_id": "s",
                                  "heartbeat_interval_ms": self.heartbeat_interval_ms}))
        with contextlib.suppress(ConnectionClosed):
            await scene(ws, self)

    async def next_frame(self, ws: ServerConnection) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await ws.recv())
        self.received.append(frame)
        return frame


async def serve_normally(ws: ServerConnection, gw: Gateway) -> None:
    """Answer sync and ping as the real server does; stream nothing."""
    while True:
        frame = await gw.next_frame(ws)
        if frame["op"] == "sync":
            await ws.send(json.dumps({"op": "sync_started",
                                      "cur_max_msg_id": frame["cur_max_msg_id"]}))
        elif frame["op"] == "ping":
            await ws.send('{"op":"pong"}')


def close_with(code: int, error_code: str | None = None, goaway_ms: int | None = None
               ) -> Scene:
    """Optionally an error frame or a goaway, then a close with ``code``."""
    async def scene(ws: ServerConnection, gw: Gateway) -> None:
        if error_code is not None:
            await ws.send(json.dumps({"op": "error", "code": error_code, "message": "x"}))
        if goaway_ms is not None:
            await ws.send(json.dumps({"op": "goaway", "reconnect_after_ms": goaway_ms}))
        await ws.close(code, "scripted")
    return scene


async def mute(ws: ServerConnection, gw: Gateway) -> None:
    """Read everything, answer nothing (a half-open link, seen from the client)."""
    while True:
        await gw.next_frame(ws)
