"""The inbox cursor: order, duplicates, the sync marker, commit (no server, no event loop)."""

from __future__ import annotations

from messenger_client.models import Entry
from messenger_client.stream import InboxStream, StreamState


def entry(i: int) -> Entry:
    return Entry(i, "message", i, "d:1:2", 1, 1, None, body=f"m{i}")


def ids(entries: list[Entry]) -> list[int]:
    return [e.id for e in entries]


def test_entries_before_sync_started_are_dropped_and_come_again_after_it() -> None:
    stream = InboxStream(committed=10)
    assert stream.start_sync() == 10
    assert stream.on_frame([entry(20)]) == []  # live, streamed before the server read our sync
    assert stream.on_sync_started(10)
    assert ids(stream.on_frame([entry(11), entry(12)])) == [11, 12]
    assert ids(stream.on_frame([entry(20)])) == [20]
    assert stream.received == 20


def test_duplicates_and_entries_behind_the_cursor_are_dropped() -> None:
    stream = InboxStream(committed=5)
    stream.start_sync()
    stream.on_sync_started(5)
    assert ids(stream.on_frame([entry(3), entry(5), entry(6), entry(6), entry(7)])) == [6, 7]
    assert ids(stream.on_frame([entry(7), entry(8)])) == [8]


def test_a_stray_sync_started_does_not_open_the_stream() -> None:
    stream = InboxStream(committed=5)
    assert not stream.on_sync_started(5)  # no sync sent
    stream.start_sync()
    assert not stream.on_sync_started(4)  # not the cursor we sent
    assert stream.state is StreamState.AWAITING_SYNC
    assert stream.on_frame([entry(6)]) == []


def test_a_reconnect_syncs_from_the_last_entry_queued_not_the_last_committed() -> None:
    stream = InboxStream(committed=0)
    stream.start_sync()
    stream.on_sync_started(0)
    stream.on_frame([entry(1), entry(2), entry(3)])
    stream.commit(1)  # the app handled one; two wait in its queue
    stream.on_disconnect()
    assert stream.on_frame([entry(4)]) == []  # no socket: nothing counts
    assert stream.start_sync() == 3
    stream.on_sync_started(3)
    assert ids(stream.on_frame([entry(3), entry(4)])) == [4]
    assert stream.committed == 1


def test_commit_only_moves_forward() -> None:
    stream = InboxStream(committed=7)
    assert not stream.commit(7)
    assert not stream.commit(3)
    assert stream.commit(9)
    assert (stream.committed, stream.received) == (9, 9)


def test_rest_pages_are_filtered_without_a_socket() -> None:
    stream = InboxStream(committed=2)
    assert ids(stream.accept([entry(1), entry(2), entry(3)])) == [3]
