"""Connection I/O against our own in-memory socket: the bounded queue and slow clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.connection import CLOSE_TRY_AGAIN, CLOSE_UNAUTHORIZED, Connection
from gateway.unacked import UnackedWatch
from gateway.wire import entry_json
from inbox.core.errors import Unavailable
from inbox.core.models import Caller, Entry, EntryDraft, EntryKind, InboxPage
from tests.gateway.test_unacked import Pushes
from tests.push.support import ManualClock


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


class PendingInbox:
    """An inbox of our own that, like the production store, shows entries only below the
    lowest position still pending (reserved by a send whose write has not committed)."""

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.pending: set[int] = set()
        self.reads = 0

    def reserve(self, pos: int) -> dict[str, Any]:
        """Reserve ``pos``; the live event's entry JSON for it."""
        self.pending.add(pos)
        self.entries[pos] = Entry(pos, _draft(pos))
        return entry_json(self.entries[pos])

    def commit(self, pos: int) -> None:
        self.pending.discard(pos)

    def fence(self, pos: int) -> None:
        """The send failed: its position is dropped, no event is published for it."""
        self.pending.discard(pos)
        del self.entries[pos]

    async def read(self, user_id: int, cursor: int) -> InboxPage:
        self.reads += 1
        visible_below = min(self.pending, default=2**63)
        return InboxPage([e for p, e in sorted(self.entries.items())
                          if cursor < p < visible_below], False)  # fmt: skip


async def _settled(conn: Connection) -> None:
    """Until the connection has no store read in flight or due."""
    for _ in range(200):
        if not conn.delivery.pumping and not conn.delivery.needs_pump():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the pump never settled")


async def _sent_ids(ws: StalledSocket, count: int) -> list[int]:
    """The entry ids sent, once ``count`` arrived (or after a second)."""
    for _ in range(100):
        ids = [int(e["id"]) for f in ws.sent if f["op"] == "entries" for e in f["entries"]]
        if len(ids) >= count:
            return ids
        await asyncio.sleep(0.01)
    return ids


async def test_an_entry_whose_event_overtook_a_pending_one_follows_it() -> None:
    """20 is reserved before 30, but 30 commits and is announced first: the read that its
    event triggers stops below the pending 20. When 20 commits, its event sends it live, and
    30 must follow, though its own event was used up."""
    ws, inbox = StalledSocket(), PendingInbox()
    ws.flowing.set()
    conn = Connection(ws, Caller(1, 2), inbox.read, queue_size=8,  # type: ignore[arg-type]
                      pump_retry_s=60)
    conn.start()
    conn.delivery.start_at(10)
    first, second = inbox.reserve(20), inbox.reserve(30)
    inbox.commit(30)
    conn.on_entry(second, 30, prev=20)
    await _settled(conn)
    assert await _sent_ids(ws, 0) == [] and inbox.reads == 1  # nothing visible past 20 yet
    inbox.commit(20)
    conn.on_entry(first, 20, prev=10)
    assert await _sent_ids(ws, 2) == [20, 30]
    await conn.finish()


async def test_an_entry_announced_behind_a_fenced_send_is_read_again() -> None:
    """The earlier send is fenced (no event will ever come for it): the connection reads
    again after ``pump_retry_s`` and finds the entry."""
    ws, inbox = StalledSocket(), PendingInbox()
    ws.flowing.set()
    conn = Connection(ws, Caller(1, 2), inbox.read, queue_size=8,  # type: ignore[arg-type]
                      pump_retry_s=0.02)
    conn.start()
    conn.delivery.start_at(10)
    inbox.reserve(20)
    second = inbox.reserve(30)
    inbox.commit(30)
    conn.on_entry(second, 30, prev=20)
    await _settled(conn)
    inbox.fence(20)
    assert await _sent_ids(ws, 1) == [30]
    reads = inbox.reads
    await asyncio.sleep(0.1)
    assert inbox.reads == reads  # no more reads once nothing announced is missing
    await conn.finish()


async def test_the_watch_hears_every_entry_handed_to_the_socket_and_its_close() -> None:
    """Entries read from the store after the head and live ones are watched, also one that
    lands while the socket is closing (it never went out); the close hands them over."""
    pushes, caller = Pushes(), Caller(1, 2)
    unacked = UnackedWatch(pushes, ManualClock(), 1_000)
    watch = unacked.watch(caller)
    ws, inbox = StalledSocket(), PendingInbox()
    ws.flowing.set()
    conn = Connection(ws, caller, inbox.read, queue_size=8,  # type: ignore[arg-type]
                      watch=watch)
    conn.start()
    conn.delivery.start_at(10)
    inbox.reserve(20)
    inbox.commit(20)
    conn.delivery.catch_up()  # stored before the registration: found by a store read
    conn.schedule_pump()
    await _settled(conn)
    conn.on_entry(inbox.reserve(30), 30, prev=20)
    assert await _sent_ids(ws, 2) == [20, 30]
    conn.close(CLOSE_UNAUTHORIZED, "logged out")
    conn.on_entry(inbox.reserve(40), 40, prev=30)
    assert len(watch.tracker) == 3
    await conn.finish()
    assert watch.tracker.closed
    await unacked.flush()
    assert pushes.calls == [{caller: [40]}]  # one conversation: its newest entry
