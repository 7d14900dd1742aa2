"""Connection I/O against our own in-memory socket: the bounded queue and slow clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.connection import CLOSE_TRY_AGAIN, CLOSE_UNAUTHORIZED, Connection
from inbox.models import Caller, InboxPage


class StalledSocket:
    """A socket whose peer never reads: every send blocks until ``release``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed_with: tuple[int, str] | None = None
        self.flowing = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.flowing.wait()
        self.sent.append(json.loads(text))

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_with = (code, reason)


async def _no_entries(user_id: int, cursor: int) -> InboxPage:
    return InboxPage([], False)


async def test_full_queue_disconnects_the_slow_client() -> None:
    ws = StalledSocket()
    conn = Connection(ws, Caller(1, 2), _no_entries, queue_size=4)  # type: ignore[arg-type]
    for i in range(10):  # never blocks the caller, whatever the peer does
        conn.send({"op": "pong", "n": i})
    await asyncio.sleep(0)
    assert conn.closing
    assert ws.closed_with is not None and ws.closed_with[0] == CLOSE_TRY_AGAIN
    await conn.finish()


async def test_close_flushes_queued_frames_first() -> None:
    ws = StalledSocket()
    ws.flowing.set()
    conn = Connection(ws, Caller(1, 2), _no_entries, queue_size=8)  # type: ignore[arg-type]
    conn.send({"op": "error", "code": "unauthorized"})
    conn.close(CLOSE_UNAUTHORIZED, "logged out")
    await conn.finish()
    assert ws.sent == [{"op": "error", "code": "unauthorized"}]
    assert ws.closed_with == (CLOSE_UNAUTHORIZED, "logged out")
