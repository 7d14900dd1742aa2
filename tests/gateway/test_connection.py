"""Connection I/O against our own in-memory socket: the bounded queue and slow clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.connection import CLOSE_TRY_AGAIN, CLOSE_UNAUTHORIZED, Connection
from inbox.core.errors import Unavailable
from inbox.core.models import Caller, Entry, EntryDraft, EntryKind, InboxPage


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
    conn.start()
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
    conn.start()
    conn.send({"op": "error", "code": "unauthorized"})
    conn.close(CLOSE_UNAUTHORIZED, "logged out")
    await conn.finish()
    assert ws.sent == [{"op": "error", "code": "unauthorized"}]
    assert ws.closed_with == (CLOSE_UNAUTHORIZED, "logged out")


async def test_a_failed_sync_read_is_told_once_and_retried_until_it_works() -> None:
    ws = StalledSocket()
    ws.flowing.set()
    outcomes: list[Exception | InboxPage] = [Unavailable("down"), Unavailable("still down"),
                                             InboxPage([Entry(7, _draft(7))], False)]

    async def flaky_read(user_id: int, cursor: int) -> InboxPage:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    conn = Connection(ws, Caller(1, 2), flaky_read, queue_size=8,  # type: ignore[arg-type]
                      pump_retry_s=0.01)
    conn.start()
    conn.delivery.on_sync(0)
    conn.schedule_pump()
    for _ in range(200):
        if any(f["op"] == "entries" for f in ws.sent):
            break
        await asyncio.sleep(0.01)
    assert [f["op"] for f in ws.sent] == ["error", "entries"]
    assert ws.sent[0]["code"] == "unavailable" and ws.sent[1]["cur_max_msg_id"] == "7"
    assert outcomes == []
    await conn.finish()


def _draft(msg_id: int) -> EntryDraft:
    return EntryDraft(EntryKind.MESSAGE, msg_id, "d:1:2", 2, 3, 0, body="hi")
