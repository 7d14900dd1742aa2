"""A small WebSocket client for tests: connect with a token, read frames by op."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.api.server import Account


async def open_ws(ws_url: str, account: Account, *, query_token: bool = False
                  ) -> ClientConnection:
    """Connect and return the socket after checking the ``hello`` frame."""
    if query_token:
        ws = await connect(f"{ws_url}?token={account.token}")
    else:
        ws = await connect(ws_url, additional_headers=account.headers)
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["op"] == "hello" and hello["heartbeat_interval_ms"] > 0
    return ws


async def next_frame(ws: ClientConnection, op: str | None = None, timeout: float = 5
                     ) -> dict[str, Any]:
    """The next frame (with ``op``, skipping others)."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if op is None or frame["op"] == op:
            return frame


async def collect_entries(ws: ClientConnection, count: int, timeout: float = 10
                          ) -> list[dict[str, Any]]:
    """Read ``entries`` frames until ``count`` entries arrived."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        frame = await next_frame(ws, "entries", timeout)
        out.extend(frame["entries"])
        assert frame["cur_max_msg_id"] == frame["entries"][-1]["id"]
    return out


async def silent_for(ws: ClientConnection, seconds: float) -> bool:
    """True if no frame arrives within ``seconds``."""
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False
