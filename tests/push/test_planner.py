"""PushPlanner over in-memory implementations of its ports: which lookups it makes for whom,
and that recipients are planned concurrently, within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from inbox.core.errors import Unavailable
from inbox.core.models import AppendBatch, Appended, Device, EntryKind
from push.decision import plan_pushes
from push.job import PushJob
from push.planner import PLAN_CONCURRENCY, RETRIES, PushPlanner
from tests.push.support import ManualClock, device, message_draft

GROUP = "g:5"
SENDER = 17
DRAFT = replace(message_draft(sender_id=SENDER), conversation_id=GROUP)
OFFLINE, MUTED, ONLINE, NO_TOKEN, OFFLINE_TOO = 41, 42, 43, 44, 45


class MemoryDevices:
    """``devices_of`` from a dict, recording each call's users."""

    def __init__(self, devices: dict[int, list[Device]]) -> None:
        self.devices = devices
        self.calls: list[list[int]] = []

    async def devices_of(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        self.calls.append(list(user_ids))
        return {uid: self.devices[uid] for uid in user_ids if self.devices.get(uid)}


class MemoryMutes:
    def __init__(self, muted: set[int]) -> None:
        self._muted = muted

    async def muted(self, user_id: int, conversation_id: str, now_ms: int) -> bool:
        return user_id in self._muted and conversation_id == GROUP


class MemoryOnline:
    """Live connections from a dict; optionally holds every lookup until ``hold`` are in
    flight at once (proving they overlap), recording who was asked and the most in flight."""

    def __init__(self, online: dict[int, set[int]], hold: int = 0) -> None:
        self._online = online
        self.hold = hold
        self.in_flight = self.max_in_flight = 0
        self.asked: list[int] = []
        self._all_in = asyncio.Event()

    async def online_devices(self, user_id: int) -> set[int]:
        self.asked.append(user_id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight >= self.hold:
            self._all_in.set()
        await self._all_in.wait()
        self.in_flight -= 1
        return self._online.get(user_id, set())


class CountingUnread:
    """The badge source; records whose total was computed (the costly read)."""

    def __init__(self) -> None:
        self.counted: list[int] = []

    async def total_unread(self, user_id: int) -> int:
        self.counted.append(user_id)
        return user_id % 10


class MemoryQueue:
    def __init__(self) -> None:
        self.jobs: list[PushJob] = []

    async def enqueue(self, jobs: Sequence[PushJob]) -> int:
        self.jobs += jobs
        return len(jobs)


class Titles:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, batch: AppendBatch) -> str:
        self.calls += 1
        return "Climbing crew"


def _everyone() -> dict[int, list[Device]]:
    return {
        SENDER: [device(170, SENDER), device(171, SENDER)],
        OFFLINE: [device(410, OFFLINE)],
        MUTED: [device(420, MUTED)],
        ONLINE: [device(430, ONLINE), device(431, ONLINE, provider="apns", token="a" * 64)],
        NO_TOKEN: [device(440, NO_TOKEN, provider=None)],
        OFFLINE_TOO: [device(450, OFFLINE_TOO), device(451, OFFLINE_TOO, provider=None)],
    }


class Setup:
    def __init__(self, devices: MemoryDevices | None = None,
                 online: MemoryOnline | None = None) -> None:
        self.devices = devices or MemoryDevices(_everyone())
        self.unread = CountingUnread()
        self.queue = MemoryQueue()
        self.titles = Titles()
        self.online = {ONLINE: {430, 431}, SENDER: {170}}
        self.bus = online or MemoryOnline(self.online)
        self.planner = PushPlanner(self.devices, self.unread, MemoryMutes({MUTED}),
                                   self.bus, self.queue, ManualClock(),
                                   self.titles, preview=True)

    async def plan(self, recipients: Sequence[int], draft: object = DRAFT) -> list[PushJob]:
        positions = {uid: 1000 + uid for uid in recipients}
        batch = AppendBatch(draft=draft, user_ids=tuple(positions))  # type: ignore[arg-type]
        await self.planner.on_appended([(batch, Appended(None, positions))])
        return self.queue.jobs


async def test_badge_is_counted_only_for_recipients_who_get_a_push() -> None:
    setup = Setup()
    jobs = await setup.plan([SENDER, OFFLINE, MUTED, ONLINE, NO_TOKEN, OFFLINE_TOO])
    assert sorted(setup.unread.counted) == [OFFLINE, OFFLINE_TOO]
    assert sorted(j.device_id for j in jobs) == [410, 450]
    assert setup.titles.calls == 1


async def test_jobs_are_what_the_pure_plan_says() -> None:
    setup = Setup()
    recipients = [OFFLINE, MUTED, ONLINE, OFFLINE_TOO]
    jobs = await setup.plan(recipients)
    expected = [
        job
        for uid in recipients
        for job in plan_pushes(DRAFT, uid, 1000 + uid, _everyone()[uid],
                               online_device_ids=setup.online.get(uid, set()),
                               muted=uid == MUTED, title="Climbing crew", badge=uid % 10,
                               preview=True)
    ]
    assert sorted(jobs, key=lambda j: j.job_id) == sorted(expected, key=lambda j: j.job_id)
    assert {j.message.badge for j in jobs} == {OFFLINE % 10, OFFLINE_TOO % 10}


async def test_nobody_to_push_costs_no_title_no_badge_and_no_enqueue() -> None:
    setup = Setup()
    assert await setup.plan([SENDER, MUTED, ONLINE, NO_TOKEN]) == []
    assert (setup.titles.calls, setup.unread.counted) == (0, [])
    assert setup.devices.calls == [[MUTED, ONLINE, NO_TOKEN]]  # one read, never the sender
    assert sorted(setup.bus.asked) == [MUTED, ONLINE]  # NO_TOKEN has nothing to push to
    assert await setup.plan([OFFLINE], replace(DRAFT, kind=EntryKind.READ)) == []
    assert len(setup.devices.calls) == 1  # a read entry is not even looked at


async def test_a_group_message_reads_every_recipient_s_devices_at_once() -> None:
    members = list(range(1_000, 1_100))
    setup = Setup(MemoryDevices({uid: [device(uid * 10, uid, provider=None)]
                                 for uid in members}))
    assert await setup.plan([SENDER, *members]) == []
    assert setup.devices.calls == [members]
    assert setup.bus.asked == []  # no token anywhere: nothing else is looked up


@pytest.mark.parametrize("recipients", [5, 3 * PLAN_CONCURRENCY])
async def test_recipients_are_planned_concurrently_within_a_bound(recipients: int) -> None:
    users = range(1_000, 1_000 + recipients)
    # Every lookup waits until as many as may run at once are in flight: a planner that
    # awaited recipients one by one would never get there.
    online = MemoryOnline({}, hold=min(recipients, PLAN_CONCURRENCY))
    setup = Setup(MemoryDevices({uid: [device(uid * 10, uid)] for uid in users}), online)
    async with asyncio.timeout(5):
        jobs = await setup.plan(list(users))
    assert online.max_in_flight == min(recipients, PLAN_CONCURRENCY)
    assert sorted(j.user_id for j in jobs) == list(users)
    assert sorted(setup.unread.counted) == list(users)


class FlakyOnline(MemoryOnline):
    """Live-connection lookups failing ``failures[user_id]`` times before they answer."""

    def __init__(self, failures: dict[int, int]) -> None:
        super().__init__({})
        self.failures = failures

    async def online_devices(self, user_id: int) -> set[int]:
        if self.failures.get(user_id, 0) > 0:
            self.failures[user_id] -= 1
            raise Unavailable("registry blip")
        return await super().online_devices(user_id)


class FlakyDevices(MemoryDevices):
    """``devices_of`` failing its first ``failures`` calls."""

    def __init__(self, devices: dict[int, list[Device]], failures: int) -> None:
        super().__init__(devices)
        self.failures = failures

    async def devices_of(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable("accounts store blip")
        return await super().devices_of(user_ids)


async def test_a_blip_is_retried_and_a_failing_recipient_costs_only_its_own_push() -> None:
    # OFFLINE's first lookup fails (retried: pushed); OFFLINE_TOO's always fail (no push);
    # neither fails the message's other recipients or the send.
    online = FlakyOnline({OFFLINE: 1, OFFLINE_TOO: RETRIES})
    setup = Setup(online=online)
    jobs = await setup.plan([OFFLINE, OFFLINE_TOO])
    assert [j.device_id for j in jobs] == [410]
    assert online.failures == {OFFLINE: 0, OFFLINE_TOO: 0}


async def test_the_devices_read_is_retried_and_its_failure_only_costs_pushes() -> None:
    setup = Setup(FlakyDevices(_everyone(), failures=RETRIES - 1))
    assert [j.device_id for j in await setup.plan([OFFLINE])] == [410]
    setup = Setup(FlakyDevices(_everyone(), failures=RETRIES))
    assert await setup.plan([OFFLINE]) == []  # logged, and the send is not failed


async def test_the_messages_of_one_batch_read_their_recipients_devices_once() -> None:
    setup = Setup()
    first = AppendBatch(draft=DRAFT, user_ids=(OFFLINE, MUTED))
    second = AppendBatch(draft=replace(DRAFT, msg_id=DRAFT.msg_id + 1),
                         user_ids=(OFFLINE, OFFLINE_TOO))
    await setup.planner.on_appended([
        (first, Appended(None, {OFFLINE: 1001, MUTED: 1002})),
        (second, Appended(None, {OFFLINE: 1003, OFFLINE_TOO: 1004})),
    ])
    assert setup.devices.calls == [[OFFLINE, MUTED, OFFLINE_TOO]]
    assert sorted((j.device_id, j.message.data["id"]) for j in setup.queue.jobs) == [
        (410, "1001"), (410, "1003"), (450, "1004")]
