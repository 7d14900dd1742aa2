"""The sans-I/O delivery cursor: live fast path, gaps, stale pumps, no duplicates."""

from __future__ import annotations

from gateway.delivery import MAX_LAG_READS, Delivery
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


def test_an_entry_announced_before_it_was_visible_is_read_once_the_earlier_one_goes_out() -> None:
    """Two sends land in one inbox at 20 (reserved first) and 30; 30 commits first and its
    event arrives while 20 is still pending, so the store read it triggers shows nothing
    (readers stop below a pending position). Then 20's event comes: it is the next entry and
    goes straight out, and 30, whose event was used up, must still be read."""
    d = Delivery(10)
    assert d.on_live(30, prev=20) is False
    ticket = d.begin_pump()
    assert d.end_pump(ticket, [], has_more=False) == []  # 20 pending: nothing visible yet
    assert d.on_live(20, prev=10) is True and d.cursor == 20
    assert d.needs_pump()
    assert [e.id for e in d.end_pump(d.begin_pump(), _entries(30), has_more=False)] == [30]
    assert not d.needs_pump() and not d.lagging()


def test_an_announced_entry_the_store_does_not_show_yet_is_read_again_later() -> None:
    """The earlier send is fenced (its writer failed) or its event is lost: no event comes
    to trigger a read, so the connection is told to look again after a pause."""
    d = Delivery(10)
    d.on_live(30, prev=20)
    d.end_pump(d.begin_pump(), [], has_more=False)
    assert d.lagging() and not d.needs_pump()
    d.recheck()
    assert d.needs_pump() and not d.lagging()
    assert [e.id for e in d.end_pump(d.begin_pump(), _entries(30), has_more=False)] == [30]
    assert not d.lagging()
    d.recheck()
    assert not d.needs_pump()


def test_lagging_reads_are_bounded() -> None:
    d = Delivery(10)
    d.on_live(30, prev=20)
    for _ in range(MAX_LAG_READS):
        d.recheck()
        d.end_pump(d.begin_pump(), [], has_more=False)
    assert not d.lagging()
    d.on_live(40, prev=30)  # a later event still triggers a read
    assert d.needs_pump()


def test_a_live_entry_in_order_needs_no_read() -> None:
    d = Delivery(10)
    assert d.on_live(20, prev=10) is True
    assert not d.needs_pump() and not d.lagging()


def test_catch_up_reads_after_the_head() -> None:
    d = Delivery(10)
    d.catch_up()
    ticket = d.begin_pump()
    assert ticket.cursor == 10
    assert [e.id for e in d.end_pump(ticket, _entries(15), has_more=False)] == [15]


def test_the_head_at_connect_is_kept_whatever_the_cursor_does() -> None:
    assert Delivery().head is None
    d = Delivery()
    d.start_at(10)
    d.on_sync(3)  # a replay from an older cursor does not move where the inbox stood
    d.start_at(20)
    assert (d.head, d.cursor) == (10, 3)
