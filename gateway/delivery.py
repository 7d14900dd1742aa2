"""Per-connection delivery state: which inbox entries go out, with no gap and no duplicate.

Sans-I/O: the connection feeds it live events and pump results and does what it says. A live
entry whose ``prev`` is exactly the cursor is the next one and goes straight out; anything
else (a gap, an out-of-order arrival, a new ``sync`` cursor) marks the state dirty and the
connection pumps from the store after the cursor. Entries at or below the cursor never go out.

A live event also *announces* that its entry is committed, but a store read may not show it
yet: readers see positions only up to the lowest one still pending, so an entry whose event
overtook that of an earlier, slower send stays hidden until the earlier one commits (or is
fenced). The highest announced id is kept, and while it is above the cursor the connection
reads again: at once when the earlier entry goes out live, else after a pause (``lagging``),
because a fenced send or a lost bus message announces nothing more. It gives up after
``MAX_LAG_READS`` such reads in a row without progress (far beyond the pending-mark lifetime
after which readers fence a dead writer), so an entry that never shows costs bounded reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inbox.core.models import Entry

MAX_LAG_READS = 30


@dataclass(frozen=True, slots=True)
class PumpTicket:
    """A store read in flight: where it starts and which ``sync`` epoch it belongs to."""

    cursor: int
    epoch: int


class Delivery:
    """The delivery cursor of one connection (see module docstring)."""

    def __init__(self, cursor: int | None = None) -> None:
        self.cursor = cursor  # None until the connection knows where the inbox stood
        self.head = cursor  # where the inbox stood at connect (entries above it are new)
        self.announced = 0  # the highest entry id a live event announced
        self.dirty = False
        self.pumping = False
        self._epoch = 0
        self._lag_reads = 0  # reads in a row that did not reach an announced entry

    def start_at(self, cursor: int) -> None:
        """Set the cursor once the inbox head at connect time is known."""
        if self.cursor is None:
            self.cursor = cursor
        if self.head is None:
            self.head = cursor

    def catch_up(self) -> None:
        """Read the store after the cursor once more (the connection was just registered:
        entries stored meanwhile were announced to nobody)."""
        self.dirty = True

    def on_live(self, entry_id: int, prev: int) -> bool:
        """A new entry landed; True means "send it now" (the cursor has moved to it).

        After a True, ``needs_pump`` tells whether later entries announced earlier must be
        read now (their events came first, when this one was not visible yet)."""
        self.announced = max(self.announced, entry_id)
        if self.cursor is not None and entry_id <= self.cursor:
            return False
        if prev == self.cursor and not self.pumping and not self.dirty:
            self.cursor = entry_id
            self.dirty = self.announced > entry_id
            self._lag_reads = 0
            return True
        self.dirty = True
        return False

    def on_sync(self, cursor: int) -> None:
        """The client asked for everything after ``cursor``; a pump in flight is stale now."""
        self.cursor = cursor
        self._epoch += 1
        self.dirty = True

    def needs_pump(self) -> bool:
        return self.dirty and not self.pumping and self.cursor is not None

    def lagging(self) -> bool:
        """Idle, yet an announced entry is above the cursor: the store did not show it (an
        earlier position is pending); read again later unless a live event comes first."""
        return (not self.dirty and not self.pumping and self.cursor is not None
                and self.announced > self.cursor and self._lag_reads < MAX_LAG_READS)  # fmt: skip

    def recheck(self) -> None:
        """The pause after ``lagging`` is over: read again."""
        if self.lagging():
            self.dirty = True

    def begin_pump(self) -> PumpTicket:
        """Start a store read after the cursor."""
        assert self.cursor is not None  # noqa: S101 (needs_pump checked it)
        self.pumping = True
        self.dirty = False
        return PumpTicket(self.cursor, self._epoch)

    def end_pump(self, ticket: PumpTicket, entries: list[Entry], has_more: bool) -> list[Entry]:
        """Take a store read's result; return the entries to send (cursor moves past them)."""
        self.pumping = False
        if ticket.epoch != self._epoch or self.cursor is None:
            self.dirty = True
            return []
        fresh = [e for e in entries if e.id > self.cursor]
        if fresh:
            self.cursor = fresh[-1].id
            self._lag_reads = 0
        elif self.announced > self.cursor:
            self._lag_reads += 1
        if has_more:
            self.dirty = True
        return fresh

    def abort_pump(self) -> None:
        """A store read failed; try again on the next trigger."""
        self.pumping = False
        self.dirty = True


def live_event(entry_json: dict[str, Any], entry_id: int, prev: int) -> dict[str, Any]:
    """The bus event for one entry landing in one inbox."""
    return {"type": "entry", "id": entry_id, "prev": prev, "entry": entry_json}
