"""The presence tracker alone: no event loop, no bus, a hand-driven clock."""

from __future__ import annotations

import pytest

from gateway.presence import Notice, PresenceTracker, Status, presence_frame
from tests.push.support import ManualClock

ALICE, BOB, CAROL = 11, 22, 33
WINDOW_MS = 1_000
ON, OFF = Status.ONLINE, Status.OFFLINE


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tracker(clock: ManualClock) -> PresenceTracker:
    return PresenceTracker(clock, settle_ms=WINDOW_MS, min_gap_ms=WINDOW_MS)


def confirm_due(tracker: PresenceTracker, truth: dict[int, Status]) -> list[Notice]:
    """What the adapter does each tick: confirm every due user with the registry's answer."""
    return [n for uid in tracker.due() if (n := tracker.confirm(uid, truth[uid])) is not None]


def test_first_online_is_told_at_once(tracker: PresenceTracker, clock: ManualClock) -> None:
    assert tracker.came_online(ALICE) == Notice(ALICE, ON, clock.ms)


def test_more_devices_say_nothing(tracker: PresenceTracker, clock: ManualClock) -> None:
    assert tracker.came_online(ALICE) is not None
    clock.advance(5)
    tracker.still_online(ALICE)
    assert tracker.due() == []
    assert not tracker.pending(ALICE)


def test_clean_offline_waits_for_the_settle_window(tracker: PresenceTracker,
                                                   clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(10)
    closed_at = clock.ms
    assert tracker.went_offline(ALICE, settle=True) is None
    clock.advance(0.5)
    assert tracker.due() == []
    clock.advance(0.5)
    assert confirm_due(tracker, {ALICE: OFF}) == [Notice(ALICE, OFF, closed_at)]


def test_offline_then_online_within_the_window_says_nothing(tracker: PresenceTracker,
                                                            clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(10)
    tracker.went_offline(ALICE, settle=True)
    clock.advance(0.3)
    assert tracker.came_online(ALICE) is None
    assert not tracker.pending(ALICE)
    clock.advance(5)
    assert tracker.due() == []


def test_another_device_connecting_voids_a_held_back_offline(tracker: PresenceTracker,
                                                             clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(10)
    tracker.went_offline(ALICE, settle=True)  # applied before the laptop's registration
    tracker.still_online(ALICE)
    clock.advance(5)
    assert tracker.due() == []


def test_silent_death_is_told_without_settling(tracker: PresenceTracker,
                                               clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(3)  # three 1 s heartbeat intervals of silence
    assert tracker.went_offline(ALICE, settle=False) == Notice(ALICE, OFF, clock.ms)


def test_a_flapping_client_gets_at_most_one_notice_per_window(tracker: PresenceTracker,
                                                              clock: ManualClock) -> None:
    notices = [tracker.came_online(ALICE)]
    for _ in range(20):  # connect/close every 100 ms for 2 s
        clock.advance(0.05)
        notices.append(tracker.went_offline(ALICE, settle=True))
        clock.advance(0.05)
        notices.append(tracker.came_online(ALICE))
        notices += confirm_due(tracker, {ALICE: ON})
    assert [n.status for n in notices if n is not None] == [ON]


def test_slower_flapping_is_still_one_notice_per_window(tracker: PresenceTracker,
                                                        clock: ManualClock) -> None:
    sent: list[tuple[int, Status]] = []

    def record(*notices: Notice | None) -> None:
        sent.extend((clock.ms, n.status) for n in notices if n is not None)

    record(tracker.came_online(ALICE))
    for _ in range(10):  # online 100 ms, offline 1.2 s: longer than the settle window
        clock.advance(0.1)
        record(tracker.went_offline(ALICE, settle=True))
        for _ in range(12):
            clock.advance(0.1)
            record(*confirm_due(tracker, {ALICE: OFF}))
        record(tracker.came_online(ALICE))
    times = [at for at, _ in sent]
    assert all(later - earlier >= WINDOW_MS for earlier, later in zip(times, times[1:],
                                                                         strict=False))
    assert [status for _, status in sent][:2] == [ON, OFF]
    assert len(sent) <= 13  # ~13 s of flapping: at most one notice a second


def test_changes_inside_the_gap_wait_and_collapse(tracker: PresenceTracker,
                                                  clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(0.1)
    assert tracker.went_offline(ALICE, settle=False) is None  # 100 ms after a notice
    assert tracker.pending(ALICE)
    clock.advance(0.5)
    assert tracker.due() == []
    clock.advance(0.4)
    assert [n.status for n in confirm_due(tracker, {ALICE: OFF})] == [OFF]
    clock.advance(0.1)  # back online 100 ms after the offline notice: waits for the gap
    assert tracker.came_online(ALICE) is None
    clock.advance(0.9)
    assert [n.status for n in confirm_due(tracker, {ALICE: ON})] == [ON]


def test_confirm_with_fresh_truth_cancels_a_stale_change(tracker: PresenceTracker,
                                                         clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(10)
    tracker.went_offline(ALICE, settle=True)  # closed here, reconnected on another node
    clock.advance(1)
    assert confirm_due(tracker, {ALICE: ON}) == []


def test_online_is_told_again_after_an_offline_told_elsewhere(tracker: PresenceTracker,
                                                              clock: ManualClock) -> None:
    tracker.came_online(ALICE)  # told here; the user then moved to another node, which
    clock.advance(30)  # later told "offline"; now it connects here again
    assert tracker.came_online(ALICE) == Notice(ALICE, ON, clock.ms)


def test_a_device_of_a_user_online_elsewhere_announces_its_offline(
    tracker: PresenceTracker, clock: ManualClock
) -> None:
    tracker.still_online(ALICE)  # the first device is on another node, which told contacts
    clock.advance(10)
    assert tracker.went_offline(ALICE, settle=True) is None
    clock.advance(1)
    assert [n.status for n in confirm_due(tracker, {ALICE: OFF})] == [OFF]


def test_a_late_still_online_does_not_hide_the_first_device(tracker: PresenceTracker,
                                                            clock: ManualClock) -> None:
    tracker.still_online(ALICE)  # the second device's registration was applied first
    assert tracker.came_online(ALICE) == Notice(ALICE, ON, clock.ms)


def test_held_back_offline_confirmed_online_says_nothing(tracker: PresenceTracker,
                                                         clock: ManualClock) -> None:
    tracker.still_online(ALICE)
    tracker.went_offline(ALICE, settle=True)
    clock.advance(1)
    assert confirm_due(tracker, {ALICE: ON}) == []  # online elsewhere: contacts know it
    clock.advance(10)
    assert tracker.went_offline(ALICE, settle=False) == Notice(ALICE, OFF, clock.ms)


def test_offline_found_by_another_node_is_told_at_once(tracker: PresenceTracker,
                                                       clock: ManualClock) -> None:
    died_at = clock.ms - 2_000
    assert tracker.went_offline(ALICE, settle=False, at_ms=died_at) == Notice(ALICE, OFF,
                                                                               died_at)


def test_a_repeated_offline_never_delays_a_pending_one(tracker: PresenceTracker,
                                                       clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(10)
    tracker.went_offline(ALICE, settle=True)
    clock.advance(0.6)
    tracker.went_offline(ALICE, settle=True)
    clock.advance(0.4)
    assert tracker.due() == [ALICE]


def test_quiet_offline_users_are_forgotten(tracker: PresenceTracker, clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    tracker.came_online(BOB)
    clock.advance(10)
    tracker.went_offline(ALICE, settle=False)
    assert tracker.tracked() == 2
    clock.advance(2)
    assert tracker.due() == []
    assert tracker.tracked() == 1  # bob is online and stays
    tracker.forget(BOB)
    assert tracker.tracked() == 0


def test_users_are_independent(tracker: PresenceTracker) -> None:
    assert tracker.came_online(ALICE) is not None
    assert tracker.came_online(BOB) is not None
    assert tracker.went_offline(ALICE, settle=False) is None  # alice inside her gap
    assert tracker.went_offline(CAROL, settle=False) is not None  # found offline elsewhere


def test_a_node_shutting_down_settles_everything_held_back(tracker: PresenceTracker,
                                                           clock: ManualClock) -> None:
    tracker.came_online(ALICE)
    clock.advance(10)
    tracker.went_offline(ALICE, settle=True)
    assert tracker.due() == []
    assert tracker.due(everything=True) == [ALICE]
    assert tracker.confirm(ALICE, OFF) == Notice(ALICE, OFF, clock.ms)


def test_presence_frame_shape() -> None:
    frame = presence_frame(Notice(ALICE, OFF, 1_735_689_600_123))
    assert frame == {"op": "presence", "user_id": "11", "status": "offline",
                     "last_seen": "2025-01-01T00:00:00.123Z"}
