"""Per-connection delivery state: which inbox entries go out, with no gap and no duplicate.

Sans-I/O: the connection feeds it live events and pump results and does what it says. A live
entry whose ``prev`` is exactly the cursor is the next one and goes straight out; anything
else (a gap, an out-of-order arrival, a new ``sync`` cursor) marks the state dirty and the
connection pumps from the store after the cursor. Entries at or below the cursor never go out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inbox.core.models import Entry


@dataclass(frozen=True, slots=True)
class PumpTicket:
    """A store read in flight: where it starts and which ``sync`` epoch it belongs to."""

    cursor: int
    epoch: int


class Delivery:
    """The delivery cursor of one connection (see module docstring)."""

    def __init__(self, cursor: int | None = None) -> None:
        self.cursor = cursor  # None until the connection knows where the inbox stood
        self.dirty = False
        self.pumping = False
        self._epoch = 0

    def start_at(self, cursor: int) -> None:
        """Set the cursor once the inbox head at connect time is known."""
        if self.cursor is None:
            self.cursor = cursor

    def on_live(self, entry_id: int, prev: int) -> bool:
        """A new entry landed; True means "send it now" (the cursor has moved to it)."""
        if self.cursor is not None and entry_id <= self.cursor:
            return False
        if prev == self.cursor and not self.pumping and not self.dirty:
            self.cursor = entry_id
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
