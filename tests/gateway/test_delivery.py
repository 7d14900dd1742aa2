"""The sans-I/O delivery cursor: live fast path, gaps, stale pumps, no duplicates."""

from __future__ import annotations

from gateway.delivery import Delivery
from inbox.core.models import Entry, EntryDraft, EntryKind


def _entries(*ids: int) -> list[Entry]:
    draft = EntryDraft(EntryKind.MESSAGE, 1, "d:1:2", 1, 1, 0, "x")
    return [Entry(i, draft) for i in ids]


def test_next_entry_goes_straight_out() -> None:
    d = Delivery(10)
    assert d.on_live(15, prev=10) is True and d.cursor == 15
    assert d.on_live(20, prev=15) is True and d.cursor == 20
    assert not d.needs_pump()


def test_a_gap_or_unknown_start_means_pump() -> None:
    d = Delivery(10)
    assert d.on_live(30, prev=20) is False and d.needs_pump()
    unknown = Delivery()
    assert unknown.on_live(5, prev=0) is False and not unknown.needs_pump()
    unknown.start_at(0)
    assert unknown.needs_pump()


def test_old_and_duplicate_entries_are_dropped() -> None:
    d = Delivery(10)
    assert d.on_live(10, prev=5) is False and d.on_live(7, prev=3) is False
    assert not d.needs_pump()


def test_pump_advances_and_filters_what_was_already_sent() -> None:
    d = Delivery(10)
    d.on_live(30, prev=20)
    ticket = d.begin_pump()
    assert ticket.cursor == 10 and not d.needs_pump()
    assert d.on_live(40, prev=30) is False  # while pumping, live entries wait for the pump
    sent = d.end_pump(ticket, _entries(20, 30), has_more=False)
    assert [e.id for e in sent] == [20, 30] and d.cursor == 30 and d.needs_pump()
    again = d.begin_pump()
    assert [e.id for e in d.end_pump(again, _entries(30, 40), has_more=False)] == [40]


def test_has_more_keeps_pumping() -> None:
    d = Delivery(0)
    d.on_sync(0)
    sent = d.end_pump(d.begin_pump(), _entries(1, 2), has_more=True)
    assert [e.id for e in sent] == [1, 2] and d.needs_pump()


def test_a_sync_during_a_pump_discards_the_stale_result() -> None:
    d = Delivery(50)
    d.on_sync(50)
    ticket = d.begin_pump()
    d.on_sync(0)  # the client restarted from scratch
    assert d.end_pump(ticket, _entries(60), has_more=False) == []
    assert d.cursor == 0 and d.needs_pump()


def test_failed_pump_is_retried() -> None:
    d = Delivery(0)
    d.on_sync(0)
    d.begin_pump()
    d.abort_pump()
    assert d.needs_pump()
