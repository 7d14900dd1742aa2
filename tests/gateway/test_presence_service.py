"""The presence service over the in-process bus and hub: what contacts receive, and when."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.bus import LocalLiveBus
from gateway.hub import Hub
from gateway.presence import Status
from gateway.presence_contacts import StaticContacts
from gateway.presence_service import PresenceInfo, PresenceService, presence_window_ms
from inbox.core.errors import Unavailable
from inbox.core.models import Caller, Device
from tests.push.support import ManualClock

ALICE, BOB, CAROL, MALLORY = 1, 2, 3, 4
PHONE, LAPTOP = Caller(ALICE, 101), Caller(ALICE, 102)


class MemoryDevices:
    """The ``last_seen`` half of an AccountStore."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.owner = {101: ALICE, 102: ALICE, 201: BOB}

    async def touch(self, device_id: int, last_seen_ms: int) -> None:
        self.seen[device_id] = last_seen_ms

    async def list_devices(self, user_id: int) -> list[Device]:
        return [Device(d, u, "d", "cli", True, 0, 0, self.seen.get(d))
                for d, u in self.owner.items() if u == user_id]


class FailingContacts:
    async def contacts_of(self, user_id: int) -> set[int]:
        raise Unavailable("contacts store down")


class Setup:
    def __init__(self, contacts: Any = None) -> None:
        self.clock = ManualClock()
        self.bus = LocalLiveBus()
        self.hub = Hub(self.bus)
        self.devices = MemoryDevices()
        self.contacts = contacts or StaticContacts([(ALICE, BOB), (ALICE, CAROL)])
        self.presence = PresenceService(self.bus, self.hub, self.contacts, self.devices,
                                        self.clock, window_ms=1_000)
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.bus.subscribe(self._record)

    def _record(self, user_id: int, event: dict[str, Any]) -> None:
        if event.get("type") == "frame":
            self.frames.append((user_id, event["frame"]))

    async def watchers_online(self) -> None:
        for user_id in (BOB, CAROL, MALLORY):
            await self.bus.register(user_id, user_id * 100)

    async def connect(self, caller: Caller) -> None:
        self.presence.connected(caller, await self.bus.register(caller.user_id,
                                                                caller.device_id))
        await self.presence.idle()

    async def disconnect(self, caller: Caller, *, silent: bool = False) -> None:
        went = await self.bus.unregister(caller.user_id, caller.device_id)
        self.presence.disconnected(caller, went, silent=silent)
        await self.presence.idle()

    async def flush(self) -> None:
        await self.presence.flush()
        await self.presence.idle()

    def statuses(self) -> list[tuple[int, str]]:
        return [(uid, frame["status"]) for uid, frame in self.frames]


@pytest.fixture
async def setup() -> Setup:
    s = Setup()
    await s.watchers_online()
    return s


async def test_contacts_hear_online_and_strangers_do_not(setup: Setup) -> None:
    await setup.connect(PHONE)
    assert sorted(setup.statuses()) == [(BOB, "online"), (CAROL, "online")]
    assert setup.frames[0][1]["user_id"] == str(ALICE)
    assert setup.devices.seen[PHONE.device_id] == setup.clock.ms


async def test_a_second_device_is_no_news_and_the_last_one_out_is(setup: Setup) -> None:
    await setup.connect(PHONE)
    await setup.connect(LAPTOP)
    setup.clock.advance(5)
    await setup.disconnect(PHONE)
    await setup.flush()
    setup.clock.advance(5)
    await setup.flush()
    assert setup.statuses().count((BOB, "online")) == 1
    assert (BOB, "offline") not in setup.statuses()
    await setup.disconnect(LAPTOP)
    closed_at = setup.clock.ms
    await setup.flush()
    assert (BOB, "offline") not in setup.statuses()  # settling
    setup.clock.advance(1)
    await setup.flush()
    offline = [f for uid, f in setup.frames if uid == BOB and f["status"] == "offline"]
    assert len(offline) == 1
    assert offline[0]["last_seen"].endswith("Z")
    assert setup.devices.seen[LAPTOP.device_id] == closed_at


async def test_reconnect_within_the_window_sends_nothing(setup: Setup) -> None:
    await setup.connect(PHONE)
    setup.clock.advance(5)
    setup.frames.clear()
    for _ in range(10):
        await setup.disconnect(PHONE)
        setup.clock.advance(0.1)
        await setup.connect(PHONE)
        await setup.flush()
    setup.clock.advance(5)
    await setup.flush()
    assert setup.frames == []


async def test_silent_death_is_told_at_once(setup: Setup) -> None:
    await setup.connect(PHONE)
    setup.clock.advance(3)
    await setup.disconnect(PHONE, silent=True)
    assert setup.statuses()[2:] in ([(BOB, "offline"), (CAROL, "offline")],
                                    [(CAROL, "offline"), (BOB, "offline")])


async def test_expired_registrations_of_a_dead_node_turn_the_user_offline(setup: Setup) -> None:
    await setup.connect(PHONE)
    setup.clock.advance(10)
    setup.frames.clear()
    died_at = setup.clock.ms - 2_000
    await setup.presence._expired(ALICE, {PHONE.device_id}, died_at)  # what the bus calls
    await setup.presence.idle()
    assert sorted(setup.statuses()) == [(BOB, "offline"), (CAROL, "offline")]
    assert setup.devices.seen[PHONE.device_id] == died_at


async def test_statuses_report_online_offline_and_never_seen(setup: Setup) -> None:
    await setup.connect(PHONE)
    setup.clock.advance(2)
    await setup.disconnect(PHONE)
    left_at = setup.clock.ms
    setup.clock.advance(1)
    got = await setup.presence.statuses([ALICE, BOB, 999, ALICE])
    assert got == {
        ALICE: PresenceInfo(Status.OFFLINE, left_at),
        BOB: PresenceInfo(Status.ONLINE, setup.clock.ms),  # a watcher holds a connection
        999: PresenceInfo(Status.OFFLINE, None),
    }


async def test_a_failing_contacts_store_costs_the_notice_only() -> None:
    setup = Setup(FailingContacts())
    await setup.watchers_online()
    await setup.connect(PHONE)
    await setup.disconnect(PHONE, silent=True)
    assert setup.frames == []
    assert setup.devices.seen[PHONE.device_id] == setup.clock.ms


async def test_flush_task_runs_until_closed(setup: Setup) -> None:
    await setup.presence.start()
    await setup.presence.start()  # idempotent
    await setup.presence.close()
    await setup.presence.close()


def test_window_follows_the_heartbeat() -> None:
    assert presence_window_ms(1_000) == 1_000
    assert presence_window_ms(30_000) == 5_000


async def test_closing_settles_what_is_held_back(setup: Setup) -> None:
    await setup.presence.start()
    await setup.connect(PHONE)
    setup.clock.advance(5)
    await setup.disconnect(PHONE)  # settling for another second; the node stops now
    await setup.presence.close()
    assert sorted(setup.statuses())[:2] == [(BOB, "offline"), (BOB, "online")]


async def test_one_users_notices_keep_their_order(setup: Setup) -> None:
    await setup.connect(PHONE)
    setup.clock.advance(5)
    went = await setup.bus.unregister(ALICE, PHONE.device_id)
    setup.presence.disconnected(PHONE, went, silent=True)  # both notices in flight at once
    setup.clock.advance(5)
    setup.presence.connected(PHONE, await setup.bus.register(ALICE, PHONE.device_id))
    await setup.presence.idle()
    assert [status for uid, status in setup.statuses() if uid == BOB] == [
        "online", "offline", "online"]
