"""Pure sync-cursor rules: limits, the next cursor, and acks that never move back."""

from __future__ import annotations

from dataclasses import dataclass

from inbox.core.errors import InvalidInput
from inbox.core.models import Entry, InboxPage

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One sync answer: entries after the cursor, the cursor to send next, and ``has_more``."""

    entries: list[Entry]
    cur_max_msg_id: int
    has_more: bool


def check_limit(limit: int) -> int:
    """Return ``limit`` if it is within 1..MAX_LIMIT, else InvalidInput (API: 422)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be within 1..{MAX_LIMIT}, got {limit}")
    return limit


def page_after(cursor: int, page: InboxPage) -> SyncPage:
    """The sync answer for ``page`` read after ``cursor``: the largest id returned, or cursor.

    Entries at or below the cursor are dropped, so a store that returned one twice could not
    make a device apply it twice.
    """
    entries = [e for e in page.entries if e.id > cursor]
    next_cursor = entries[-1].id if entries else cursor
    return SyncPage(entries, next_cursor, page.has_more)


def merge_ack(current: int, acked: int) -> int:
    """A device's cursor after an ack: acks never move it back."""
    return max(current, acked)
