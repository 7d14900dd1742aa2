"""Pure sync-cursor rules."""

from __future__ import annotations

import pytest

from inbox.core.errors import InvalidInput
from inbox.core.models import Entry, EntryDraft, EntryKind, InboxPage
from sync.cursor import check_limit, merge_ack, page_after


def _page(*ids: int, has_more: bool = False) -> InboxPage:
    draft = EntryDraft(EntryKind.MESSAGE, 1, "d:1:2", 1, 1, 0, "x")
    return InboxPage([Entry(i, draft) for i in ids], has_more)


def test_limit_bounds() -> None:
    assert check_limit(1) == 1 and check_limit(1000) == 1000
    for bad in (0, -5, 1001):
        with pytest.raises(InvalidInput):
            check_limit(bad)


def test_cursor_is_the_last_entry_or_unchanged() -> None:
    page = page_after(5, _page(7, 9, has_more=True))
    assert [e.id for e in page.entries] == [7, 9] and page.cur_max_msg_id == 9 and page.has_more
    assert page_after(9, _page()).cur_max_msg_id == 9


def test_entries_at_or_below_the_cursor_never_go_out_twice() -> None:
    assert [e.id for e in page_after(7, _page(5, 7, 8)).entries] == [8]


def test_acks_never_move_back() -> None:
    assert merge_ack(10, 5) == 10 and merge_ack(10, 12) == 12
