"""The idle workload's sockets against a WebSocket server of our own with a fast keepalive
(uvicorn's is a ping every 20 s, 20 s to answer): they answer its protocol pings, and a
socket it closes counts as dropped, by close code."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from websockets.asyncio.server import ServerConnection, serve

from bench.load.client import Member
from bench.load.idle import IdleJob, idle_sockets

HEARTBEAT_MS = 300  # the tool's app-level pings go every 100 ms


async def _hello_then_listen(ws: ServerConnection) -> None:
    await ws.send(json.dumps({"op": "hello", "heartbeat_interval_ms": HEARTBEAT_MS}))
    async for _ in ws:
        pass


Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def _served(handler: Handler) -> AsyncIterator[str]:
    """``handler`` served with a ping every 100 ms that must be answered within 200 ms."""
    async with serve(handler, "127.0.0.1", 0, ping_interval=0.1, ping_timeout=0.2) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/ws"


def _job(url: str, count: int) -> IdleJob:
    return IdleJob(url, (Member("1", "1", "token"),), count, hold=1.2, concurrency=count)


async def test_idle_sockets_answer_the_servers_keepalive_pings() -> None:
    async with _served(_hello_then_listen) as url:
        result = await idle_sockets(_job(url, 4))
        assert result["opened"] == 4
        assert result["dropped"] == 0 and result["errors"] == {}


async def test_a_socket_the_server_closes_counts_as_dropped() -> None:
    accepted = 0

    async def close_the_second(ws: ServerConnection) -> None:
        nonlocal accepted
        accepted += 1
        if accepted != 2:
            await _hello_then_listen(ws)
            return
        await ws.send(json.dumps({"op": "hello", "heartbeat_interval_ms": HEARTBEAT_MS}))
        await asyncio.sleep(0.2)
        await ws.close(1011, "going")

    async with _served(close_the_second) as url:
        result = await idle_sockets(_job(url, 3))
        assert result["opened"] == 3 and result["dropped"] == 1
        assert result["errors"] == {"closed:1011": 1}
