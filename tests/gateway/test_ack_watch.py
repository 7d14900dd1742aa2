"""The sans-I/O ack watch of one socket: what counts, acks, the window, closes, collapsing."""

from __future__ import annotations

import pytest

from gateway.ack_watch import AckWatch, newest_per_conversation
from inbox.core.models import Entry, EntryDraft, EntryKind

ME, PEER, OTHER = 42, 17, 23
WINDOW = 1_000
HEAD = 100


def entry(entry_id: int, sender: int = PEER, kind: EntryKind = EntryKind.MESSAGE,
          conversation: str | None = None) -> Entry:
    cid = conversation or f"d:{min(sender, ME)}:{max(sender, ME)}"
    return Entry(entry_id, EntryDraft(kind, entry_id * 10, cid, sender, sender * 10, 0, "hi"))


def watch() -> AckWatch:
    w = AckWatch(ME, WINDOW)
    w.start_at(HEAD)
    return w


def ids(entries: list[Entry]) -> list[int]:
    return [e.id for e in entries]


def test_only_messages_from_others_that_landed_while_connected_are_watched() -> None:
    w = watch()
    assert w.delivered([entry(101)], at_ms=0) is True
    assert w.delivered([
        entry(90),  # backlog: at or below the head read at connect (a sync replays it)
        entry(HEAD),
        entry(102, sender=ME),  # the user's own message, from another of its devices
        entry(103, kind=EntryKind.READ),
        entry(104, kind=EntryKind.DELETE),
        entry(105, kind=EntryKind.GROUP_EVENT, conversation="g:5"),
    ], at_ms=0) is False
    assert len(w) == 1
    assert ids(w.due(WINDOW)) == [101]


def test_nothing_is_watched_before_the_head_is_known() -> None:
    w = AckWatch(ME, WINDOW)
    assert w.delivered([entry(101)], at_ms=0) is False
    w.start_at(HEAD)
    w.start_at(HEAD + 50)  # set once: a later head does not move the floor
    assert w.delivered([entry(101)], at_ms=0) is True


def test_entries_fall_due_after_the_window_not_before() -> None:
    w = watch()
    w.delivered([entry(101)], at_ms=0)
    w.delivered([entry(102, sender=OTHER)], at_ms=500)
    assert w.due(WINDOW - 1) == []
    assert ids(w.due(WINDOW)) == [101]
    assert w.due(WINDOW) == []  # handed out once
    assert ids(w.due(WINDOW + 500)) == [102]
    assert len(w) == 0


def test_a_late_entry_takes_the_later_ones_of_its_conversation_along() -> None:
    w = watch()
    w.delivered([entry(101)], at_ms=0)
    w.delivered([entry(102), entry(103, sender=OTHER)], at_ms=900)
    assert ids(w.due(WINDOW)) == [102]  # one push for the conversation, its newest entry
    assert ids(w.due(WINDOW + 900)) == [103]  # the other conversation in its own time


def test_an_ack_in_time_means_no_push_and_covers_only_up_to_its_cursor() -> None:
    w = watch()
    w.delivered([entry(101), entry(102), entry(103)], at_ms=0)
    w.acked(102)
    assert ids(w.due(10 * WINDOW)) == [103]


def test_acks_never_move_back_and_acked_entries_replayed_are_not_watched_again() -> None:
    w = watch()
    w.delivered([entry(101), entry(102)], at_ms=0)
    w.acked(102)
    w.acked(101)  # stale ack: changes nothing
    assert w.acked_up_to == 102
    assert w.delivered([entry(101), entry(102)], at_ms=10) is False  # a sync replay
    assert w.due(10 * WINDOW) == []


def test_a_replay_keeps_the_first_delivery_time() -> None:
    w = watch()
    w.delivered([entry(101)], at_ms=0)
    assert w.delivered([entry(101)], at_ms=800) is False
    assert ids(w.due(WINDOW)) == [101]


def test_a_replay_of_entries_a_push_covered_is_not_pushed_again() -> None:
    """One push per conversation covers its earlier un-acked entries: a ``sync`` that hands
    them again (no ack in between) must not start a second push for them."""
    w = watch()
    w.delivered([entry(101), entry(102), entry(103, sender=OTHER)], at_ms=0)
    assert ids(w.due(WINDOW)) == [102, 103]
    w.delivered([entry(101), entry(102), entry(103, sender=OTHER)], at_ms=WINDOW + 1)
    assert len(w) == 0
    assert w.due(3 * WINDOW) == []
    w.delivered([entry(104)], at_ms=3 * WINDOW)  # a new message: its own push
    assert ids(w.due(4 * WINDOW)) == [104]


def test_an_ack_below_a_push_keeps_what_the_push_covered() -> None:
    """An ack that does not reach a push's entry leaves that push covering its
    conversation."""
    w = watch()
    w.delivered([entry(101), entry(102)], at_ms=0)
    assert ids(w.due(WINDOW)) == [102]
    w.acked(101)
    w.delivered([entry(102)], at_ms=WINDOW)  # still covered by the push for 102
    assert len(w) == 0


def test_due_collapses_to_the_newest_entry_of_each_conversation() -> None:
    w = watch()
    w.delivered([entry(101), entry(102, sender=OTHER), entry(103), entry(104)], at_ms=0)
    due = w.due(WINDOW)
    assert ids(due) == [102, 104]
    assert [e.draft.conversation_id for e in due] == ["d:23:42", "d:17:42"]


def test_a_closed_socket_hands_everything_at_once_and_takes_nothing_more() -> None:
    w = watch()
    w.delivered([entry(101), entry(102)], at_ms=0)
    w.delivered([entry(103, sender=OTHER)], at_ms=900)
    w.acked(101)
    w.close()
    assert w.delivered([entry(104)], at_ms=900) is False
    assert ids(w.due(900)) == [102, 103]  # within the window, yet due: nobody will ack
    assert len(w) == 0


def test_everything_hands_over_what_is_not_due_yet() -> None:
    w = watch()
    w.delivered([entry(101)], at_ms=0)
    assert w.due(1, everything=True) == [entry(101)]


def test_newest_per_conversation_is_in_id_order() -> None:
    entries = [entry(105), entry(103, sender=OTHER), entry(101), entry(102, sender=OTHER)]
    assert ids(newest_per_conversation(entries)) == [103, 105]


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        AckWatch(ME, 0)
