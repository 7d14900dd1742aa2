"""The inbox cursor of one device: which entries go to the app, in order, each once. No I/O.

Two positions: ``received`` is the last entry queued for the app (a reconnect syncs from it,
so entries already queued are not fetched again), ``committed`` the last one the app has
handled (persisted, acked, and where a restarted process resumes). Entries at or below
``received`` are duplicates and dropped.

On a new socket the server streams live entries from the moment it registered the socket,
before it has read our ``sync``; those would jump ahead of the replay and are dropped. Only
entries after the server's ``sync_started`` answer count.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from messenger_client.models import Entry


class StreamState(Enum):
    IDLE = "idle"  # no socket: REST catch-up only
    AWAITING_SYNC = "awaiting_sync"  # our sync is on its way: entries frames are stale
    STREAMING = "streaming"  # entries frames follow our cursor


class InboxStream:
    """Cursor and duplicate filter (see module docstring)."""

    def __init__(self, committed: int) -> None:
        self.received = committed
        self.committed = committed
        self.state = StreamState.IDLE
        self._sync_cursor: int | None = None

    def start_sync(self) -> int:
        """A new socket is about to send ``sync``: the cursor to send."""
        self.state = StreamState.AWAITING_SYNC
        self._sync_cursor = self.received
        return self.received

    def on_sync_started(self, cursor: int) -> bool:
        """The server took our sync; True if it is the one we sent (a stray one is ignored)."""
        if self.state is not StreamState.AWAITING_SYNC or cursor != self._sync_cursor:
            return False
        self.state = StreamState.STREAMING
        return True

    def on_frame(self, entries: Iterable[Entry]) -> list[Entry]:
        """An ``entries`` frame: the entries to hand to the app (none before ``sync_started``)."""
        if self.state is not StreamState.STREAMING:
            return []
        return self.accept(entries)

    def accept(self, entries: Iterable[Entry]) -> list[Entry]:
        """Entries in inbox order (a frame or a REST page): the ones not seen yet."""
        fresh: list[Entry] = []
        for entry in entries:
            if entry.id > self.received:
                fresh.append(entry)
                self.received = entry.id
        return fresh

    def on_disconnect(self) -> None:
        self.state = StreamState.IDLE
        self._sync_cursor = None

    def commit(self, entry_id: int) -> bool:
        """The app handled everything up to ``entry_id``; True if the cursor moved."""
        if entry_id <= self.committed:
            return False
        self.committed = entry_id
        self.received = max(self.received, entry_id)
        return True
