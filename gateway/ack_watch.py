"""Which live deliveries of one socket are still provisional: sans-I/O bookkeeping.

The push planner skips devices that are online when a message lands, but a socket that is
open yet silent (a frozen app, a network gone without a FIN) looks online too. So a live
delivery counts only once the device acks it: the socket's ``AckWatch`` remembers the
``message`` entries from other users that landed while it was connected, drops them when an
ack covers them, and hands back those not acked within the window (``due``) or left when the
socket died (``close``), collapsed to the newest entry of each conversation: one push per
conversation, which the conversation's later un-acked entries ride along with. Entries at or
below the inbox head read when the socket connected are backlog that a ``sync`` replays,
never watched: a device catching up gets no pushes for them.

Times are milliseconds of a monotonic clock, passed in; nothing here reads a clock or awaits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inbox.core.models import Entry, EntryKind


@dataclass(frozen=True, slots=True)
class Watched:
    """An entry the socket was handed and when (first time only: a replay does not reset it)."""

    entry: Entry
    at_ms: int


def newest_per_conversation(entries: Iterable[Entry]) -> list[Entry]:
    """The newest (highest id) entry of each conversation, in id order: what one collapsed
    push per conversation carries."""
    newest: dict[str, Entry] = {}
    for entry in entries:
        cid = entry.draft.conversation_id
        if cid not in newest or entry.id > newest[cid].id:
            newest[cid] = entry
    return sorted(newest.values(), key=lambda e: e.id)


class AckWatch:
    """The un-acked live deliveries of one socket of ``user_id`` (see module docstring).

    ``window_ms`` is how long an entry may stay un-acked after it was handed to the socket.
    """

    __slots__ = ("_pushed", "_watched", "acked_up_to", "closed", "floor", "user_id",
                 "window_ms")

    def __init__(self, user_id: int, window_ms: int) -> None:
        if window_ms <= 0:
            raise ValueError(f"the ack window must be positive, got {window_ms} ms")
        self.user_id = user_id
        self.window_ms = window_ms
        self.floor: int | None = None  # the inbox head at connect: entries above it count
        self.acked_up_to = 0
        self.closed = False
        self._watched: dict[int, Watched] = {}  # by entry id, in the order they came
        # Per conversation, the newest entry ``due`` handed over: its push covers the
        # conversation up to it, so a replay of those entries is not watched again.
        self._pushed: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._watched)

    def start_at(self, head: int) -> None:
        """The inbox head read when the socket connected (set once): entries at or below it
        landed before the connection and are never watched."""
        if self.floor is None:
            self.floor = head

    def counts(self, entry: Entry) -> bool:
        """Whether handing ``entry`` to this socket makes it provisional: a ``message`` from
        another user, landed while connected, not acked yet, not covered by a push yet."""
        return (entry.kind is EntryKind.MESSAGE and entry.draft.sender_id != self.user_id
                and self.floor is not None and entry.id > self.floor
                and entry.id > self.acked_up_to
                and entry.id > self._pushed.get(entry.draft.conversation_id, 0))  # fmt: skip

    def delivered(self, entries: Iterable[Entry], at_ms: int) -> bool:
        """The socket was handed ``entries`` at ``at_ms``; True if one is newly watched.

        Nothing is watched before ``start_at`` or after ``close``; an entry handed again (a
        ``sync`` replay) keeps its first time."""
        added = False
        if self.closed:
            return False
        for entry in entries:
            if entry.id not in self._watched and self.counts(entry):
                self._watched[entry.id] = Watched(entry, at_ms)
                added = True
        return added

    def acked(self, cursor: int) -> None:
        """The device acked everything up to ``cursor`` (on any socket, or over REST)."""
        if cursor <= self.acked_up_to:
            return
        self.acked_up_to = cursor
        self._watched = {eid: w for eid, w in self._watched.items() if eid > cursor}
        self._pushed = {cid: eid for cid, eid in self._pushed.items() if eid > cursor}

    def close(self) -> None:
        """The socket is gone: what is still watched is due at once, nothing more comes."""
        self.closed = True

    def due(self, now_ms: int, *, everything: bool = False) -> list[Entry]:
        """Take the entries to push now, newest per conversation: in each conversation with
        an entry not acked within the window by ``now_ms``, its newest un-acked entry (the
        later ones ride along: one push per conversation, not one per entry that falls due);
        all of them once the socket closed, or with ``everything`` (the node is going away).
        What is taken is watched no more."""
        if everything or self.closed:
            taken = list(self._watched.values())
            self._watched = {}
            return self._handed(taken)
        deadline = now_ms - self.window_ms
        late: set[str] = set()
        for w in self._watched.values():  # in the order they came, which is time order
            if w.at_ms > deadline:
                break
            late.add(w.entry.draft.conversation_id)
        if not late:
            return []
        taken = [w for w in self._watched.values() if w.entry.draft.conversation_id in late]
        for w in taken:
            del self._watched[w.entry.id]
        return self._handed(taken)

    def _handed(self, taken: list[Watched]) -> list[Entry]:
        """The newest of ``taken`` per conversation, remembered as pushed."""
        newest = newest_per_conversation(w.entry for w in taken)
        for e in newest:
            cid = e.draft.conversation_id
            self._pushed[cid] = max(self._pushed.get(cid, 0), e.id)
        return newest
