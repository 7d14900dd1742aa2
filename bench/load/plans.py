"""Who holds which socket and drives which sender, per process, for W1 and W2. No I/O.

W1: pair ``p`` is members ``2p`` and ``2p + 1``; sender ``2p`` is the first writing to the
second, ``2p + 1`` the reverse; both sockets of a pair live in one process, so each process
checks that everything its senders sent arrived. W2: the first ``online`` group members hold
sockets, spread over the processes; the first ``senders`` of them send to the group, and every
process watches all its sockets for every message (the sender's own socket included: it gets
its message as ``entries`` too), so a message makes ``online`` deliveries.
"""

from __future__ import annotations

from bench.load.client import Member
from bench.load.schedule import Schedule
from bench.load.traffic import SenderPlan, StepTiming, TrafficJob


def split(total: int, parts: int) -> list[int]:
    """``total`` shared out over ``parts`` as evenly as can be (the first get one more)."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def w1_jobs(members: list[Member], pairs: int, processes: int, schedule: Schedule, *,
            via: str, tag: str, base_url: str, ws_url: str, timing: StepTiming
            ) -> list[TrafficJob]:  # fmt: skip
    """One job per process (processes with no pair get none) for ``pairs`` 1:1 chats."""
    if len(members) < 2 * pairs or schedule.senders != 2 * pairs:
        raise ValueError("W1 needs 2 members and 2 senders per pair")
    jobs = []
    for worker in range(processes):
        sockets: list[Member] = []
        senders: list[SenderPlan] = []
        watch: list[tuple[int, tuple[int, ...]]] = []
        for p in range(worker, pairs, processes):
            a, b = members[2 * p], members[2 * p + 1]
            ia, ib = len(sockets), len(sockets) + 1
            sockets += [a, b]
            senders += [SenderPlan(2 * p, ia, to_user=b.user_id),
                        SenderPlan(2 * p + 1, ib, to_user=a.user_id)]  # fmt: skip
            watch += [(2 * p, (ib,)), (2 * p + 1, (ia,))]
        if sockets:
            jobs.append(TrafficJob(base_url, ws_url, tag, via, tuple(sockets), tuple(senders),
                                   tuple(watch), schedule, timing))
    return jobs


def w2_jobs(online: list[Member], group_id: str, processes: int, schedule: Schedule, *,
            tag: str, base_url: str, ws_url: str, timing: StepTiming) -> list[TrafficJob]:
    """One job per process for a group whose ``online`` members hold sockets; the first
    ``schedule.senders`` of them send."""
    if schedule.senders > len(online):
        raise ValueError("W2's senders must be online members")
    jobs = []
    for worker in range(min(processes, len(online))):
        mine = list(range(worker, len(online), processes))
        local = {n: i for i, n in enumerate(mine)}
        senders = tuple(SenderPlan(s, local[s], to_group=group_id)
                        for s in range(schedule.senders) if s in local)  # fmt: skip
        everyone = tuple(range(len(mine)))
        watch = tuple((s, everyone) for s in range(schedule.senders))
        jobs.append(TrafficJob(base_url, ws_url, tag, "ws", tuple(online[n] for n in mine),
                               senders, watch, schedule, timing))
    return jobs
