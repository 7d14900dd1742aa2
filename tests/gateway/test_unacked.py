"""The node side of ack watches, on a hand-driven clock: which entries reach the push side,
when, collapsed how; acks routed to every socket of a device; closes; the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from gateway.unacked import UnackedWatch, tick_s
from inbox.core.models import Caller, Entry
from tests.gateway.test_ack_watch import HEAD, ME, OTHER, entry
from tests.push.support import ManualClock

WINDOW_MS = 1_000
PHONE, TABLET = Caller(ME, 420), Caller(ME, 421)


class Pushes:
    """The push side: records what it was handed, or fails when told to."""

    def __init__(self) -> None:
        self.calls: list[dict[Caller, list[int]]] = []
        self.fail = False

    async def __call__(self, unacked: Mapping[Caller, Sequence[Entry]]) -> None:
        if self.fail:
            raise RuntimeError("push side down")
        self.calls.append({caller: [e.id for e in entries] for caller, entries in unacked.items()})


def setup() -> tuple[UnackedWatch, Pushes, ManualClock]:
    pushes, clock = Pushes(), ManualClock()
    return UnackedWatch(pushes, clock, WINDOW_MS), pushes, clock


async def test_entries_not_acked_in_time_are_handed_over_per_device_collapsed() -> None:
    unacked, pushes, clock = setup()
    first, second = unacked.watch(PHONE), unacked.watch(PHONE)  # two sockets of one device
    first.landed([entry(101), entry(102, sender=OTHER)], HEAD)
    second.landed([entry(101), entry(103)], HEAD)
    clock.advance(WINDOW_MS / 1000 - 0.001)
    assert await unacked.flush() == 0
    clock.advance(0.001)
    assert await unacked.flush() == 2
    assert pushes.calls == [{PHONE: [102, 103]}]  # one per conversation, for the device
    assert await unacked.flush() == 0 and not unacked.active


async def test_an_ack_reaches_every_socket_of_the_device_and_no_other() -> None:
    unacked, pushes, clock = setup()
    for caller in (PHONE, PHONE, TABLET):
        unacked.watch(caller).landed([entry(101), entry(102)], HEAD)
    unacked.acked(PHONE.device_id, 102)
    clock.advance(1)
    await unacked.flush()
    assert pushes.calls == [{TABLET: [102]}]


async def test_a_closed_socket_is_handed_over_on_the_next_flush_unless_acked_meanwhile(
) -> None:
    unacked, pushes, _ = setup()
    phone, tablet = unacked.watch(PHONE), unacked.watch(TABLET)
    phone.landed([entry(101)], HEAD)
    tablet.landed([entry(101), entry(102)], HEAD)
    phone.closed()
    tablet.closed()
    unacked.acked(PHONE.device_id, 101)  # from the device's new socket, say
    assert await unacked.flush() == 1  # at once: no window for a socket that is gone
    assert pushes.calls == [{TABLET: [102]}]
    assert unacked.held() == 0  # closed and flushed: nothing kept


async def test_a_closed_socket_with_nothing_watched_is_dropped_at_once() -> None:
    unacked, _, _ = setup()
    watch = unacked.watch(PHONE)
    watch.landed([entry(HEAD)], HEAD)  # backlog: not watched
    assert unacked.held() == 1
    watch.closed()
    assert unacked.held() == 0 and not unacked.active


async def test_close_hands_over_everything_and_stops_the_loop() -> None:
    unacked, pushes, _ = setup()
    unacked.watch(PHONE).landed([entry(101)], HEAD)
    await unacked.start()
    await unacked.close()
    assert pushes.calls[-1] == {PHONE: [101]}  # not due yet, but nobody here will push it


async def test_a_failing_push_side_costs_those_pushes_not_the_watch(
    caplog: pytest.LogCaptureFixture
) -> None:
    unacked, pushes, clock = setup()
    unacked.watch(PHONE).landed([entry(101)], HEAD)
    pushes.fail = True
    clock.advance(1)
    assert await unacked.flush() == 1
    assert "could not push" in caplog.text
    pushes.fail = False
    unacked.watch(TABLET).landed([entry(102)], HEAD)
    clock.advance(1)
    await unacked.flush()
    assert pushes.calls == [{TABLET: [102]}]


async def test_the_loop_flushes_every_tick_of_the_clock() -> None:
    unacked, pushes, clock = setup()
    start = clock.ms
    unacked.watch(PHONE).landed([entry(101)], HEAD)
    await unacked.start()
    for _ in range(100):  # ManualClock.sleep moves the clock by a tick and yields
        if pushes.calls:
            break
        await asyncio.sleep(0)
    await unacked.close()
    assert pushes.calls == [{PHONE: [101]}]
    late_ms = clock.ms - start - WINDOW_MS
    assert 0 <= late_ms <= tick_s(WINDOW_MS) * 1000 + 1


def test_the_tick_is_a_tenth_of_the_window_within_bounds() -> None:
    assert tick_s(10_000) == 1.0
    assert tick_s(2_000) == 0.2
    assert tick_s(100) == 0.05
    assert tick_s(600_000) == 1.0


async def test_close_lets_a_push_in_flight_finish() -> None:
    _, _, clock = setup()
    entered, release = asyncio.Event(), asyncio.Event()
    done: list[list[int]] = []

    async def slow_push(batch: Mapping[Caller, Sequence[Entry]]) -> None:
        entered.set()
        await release.wait()
        done.extend([e.id for e in entries] for entries in batch.values())

    unacked = UnackedWatch(slow_push, clock, WINDOW_MS)
    unacked.watch(PHONE).landed([entry(101)], HEAD)
    await unacked.start()
    await asyncio.wait_for(entered.wait(), 5)  # the loop took 101 and is pushing it
    closing = asyncio.create_task(unacked.close())
    await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    await closing
    assert done == [[101]]
