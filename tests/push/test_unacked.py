"""UnackedPusher over in-memory ports (and each real queue for dedup): the stored cursor,
mutes and tokens decide; jobs are those the append-time planning would make, same ids."""

from __future__ import annotations

from dataclasses import replace

from inbox.core.models import AppendBatch, Appended, Caller, Device, Entry
from push.decision import plan_pushes
from push.planner import RETRIES, PushPlanner
from push.queue import PushQueue
from push.unacked import USERS_PER_READ, UnackedPusher
from tests.push.support import ManualClock, device, message_draft
from tests.push.test_planner import (
    GROUP,
    CountingUnread,
    FlakyDevices,
    MemoryDevices,
    MemoryMutes,
    MemoryOnline,
    MemoryQueue,
    Titles,
)

ME, PEER = 42, 17
PHONE, TABLET = Caller(ME, 420), Caller(ME, 421)
DIRECT = message_draft(sender_id=PEER)  # d:17:42


def entry(entry_id: int, conversation: str = DIRECT.conversation_id) -> Entry:
    return Entry(entry_id, replace(DIRECT, msg_id=entry_id * 10, conversation_id=conversation))


def devices(**cursors: int) -> dict[int, list[Device]]:
    """Both of ME's devices with push tokens; ``phone=``/``tablet=``: their stored cursors."""
    return {ME: [replace(device(PHONE.device_id, ME), cur_max_msg_id=cursors.get("phone", 0)),
                 replace(device(TABLET.device_id, ME), cur_max_msg_id=cursors.get("tablet", 0))]}


class Setup:
    def __init__(self, accounts: MemoryDevices | None = None, muted: bool = False) -> None:
        self.accounts = accounts or MemoryDevices(devices())
        self.unread = CountingUnread()
        self.queue = MemoryQueue()
        self.titles = Titles()
        self.pusher = UnackedPusher(self.accounts, self.unread,
                                    MemoryMutes({ME} if muted else set()), self.queue,
                                    ManualClock(), self.titles, preview=True)


async def test_jobs_are_what_the_append_time_plan_makes_for_the_same_entries() -> None:
    setup = Setup()
    unacked = {PHONE: [entry(101), entry(102, GROUP)]}
    assert await setup.pusher(unacked) == 2
    expected = [job for e in unacked[PHONE]
                for job in plan_pushes(e.draft, ME, e.id, devices()[ME], {TABLET.device_id},
                                       muted=False, title="Climbing crew", badge=ME % 10,
                                       preview=True)]
    assert setup.queue.jobs == expected
    assert [j.job_id for j in setup.queue.jobs] == ["420:101", "420:102"]


async def test_entries_the_device_acked_anywhere_are_not_pushed() -> None:
    setup = Setup(MemoryDevices(devices(phone=102, tablet=101)))
    await setup.pusher({PHONE: [entry(102)], TABLET: [entry(102)]})
    assert [j.job_id for j in setup.queue.jobs] == ["421:102"]
    assert setup.accounts.calls == [[ME]]  # the user's devices read once for both


async def test_a_device_without_a_token_or_gone_costs_no_badge_and_no_title() -> None:
    no_token = {ME: [device(PHONE.device_id, ME, provider=None)]}
    setup = Setup(MemoryDevices(no_token))
    assert await setup.pusher({PHONE: [entry(101)], TABLET: [entry(101)]}) == 0
    assert (setup.unread.counted, setup.titles.calls, setup.queue.jobs) == ([], 0, [])


async def test_muted_conversations_are_not_pushed_the_others_are() -> None:
    setup = Setup(muted=True)  # ME muted GROUP
    await setup.pusher({PHONE: [entry(101), entry(102, GROUP)]})
    assert [j.message.data["conversation_id"] for j in setup.queue.jobs] == ["d:17:42"]


async def test_an_entry_the_append_time_planning_pushed_is_not_queued_again(
    push_queue: PushQueue, manual_clock: ManualClock
) -> None:
    # Landed while the socket was being registered: the planner saw the device offline and
    # the socket got it too. Its un-acked push has the same job id: the queue keeps one.
    accounts, unread, titles = MemoryDevices(devices()), CountingUnread(), Titles()
    planner = PushPlanner(accounts, unread, MemoryMutes(set()), MemoryOnline({}), push_queue,
                          manual_clock, titles, preview=True)
    pusher = UnackedPusher(accounts, unread, MemoryMutes(set()), push_queue, manual_clock,
                           titles, preview=True)
    batch = AppendBatch(draft=DIRECT, user_ids=(PEER, ME))
    await planner.on_appended([(batch, Appended(None, {ME: 101}))])
    assert await pusher({PHONE: [Entry(101, DIRECT)]}) == 0
    assert (await push_queue.stats()).depth == 2  # phone and tablet, each once


async def test_the_devices_read_is_retried_and_its_failure_only_costs_pushes() -> None:
    setup = Setup(FlakyDevices(devices(), failures=RETRIES - 1))
    assert await setup.pusher({PHONE: [entry(101)]}) == 1
    setup = Setup(FlakyDevices(devices(), failures=RETRIES))
    assert await setup.pusher({PHONE: [entry(101)]}) == 0


async def test_many_devices_are_read_in_bounded_chunks() -> None:
    users = range(1_000, 1_000 + USERS_PER_READ + 1)
    setup = Setup(MemoryDevices({uid: [device(uid * 10, uid)] for uid in users}))
    unacked = {Caller(uid, uid * 10): [Entry(5, replace(DIRECT, conversation_id="g:9"))]
               for uid in users}
    assert await setup.pusher(unacked) == len(users)
    assert [len(call) for call in setup.accounts.calls] == [USERS_PER_READ, 1]


async def test_the_badge_is_the_user_s_unread_total() -> None:
    setup = Setup()
    await setup.pusher({PHONE: [entry(101)]})
    assert setup.unread.counted == [ME]
    assert setup.queue.jobs[0].message.badge == ME % 10  # CountingUnread's total
