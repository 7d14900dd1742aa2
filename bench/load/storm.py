"""The storm: thousands of sockets reconnecting to one node at the same instant, as when the
node their clients were on died, each with a backlog of entries to catch up on.

Set-up (``prepare``): the users are put in groups of up to 100; each user's inbox head is read
(the cursor its device held when its node died); then every group gets ``backlog`` messages,
so each user has that many entries to sync, and the new heads are the targets.

The storm (``run_storm``, one call per load-generator process): at one instant shared by the
processes every socket connects with its user's token (sockets cycle through the users, as a
device may hold several). Each behaves as the bundled client does (``messenger_client``'s
``reconnect.plan`` and full-jitter backoff): an upgrade refused with ``Retry-After`` (503 from
a node at its admission limit, 429) waits at least that long, a failed connect or a dropped
socket backs off. Once in, it sends ``sync`` from its cursor and reads ``entries`` frames
until it reaches its target: its sync time is counted from the storm's instant. Synced
sockets stay open until every process is done, as a real storm's sockets stay connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.load.client import Member, new_group, raise_nofile_limit
from bench.load.histogram import Histogram
from messenger_client.backoff import Backoff
from messenger_client.errors import error_from_response
from messenger_client.reconnect import Closed, Reconnect, plan

GROUP_SIZE = 100
OPEN_TIMEOUT_S = 10.0
"""Connect and upgrade, then ``hello``: each must come within this, as for the bundled
client (``messenger_client.Client``'s ``open_timeout_s``), or the attempt counts as failed."""
PING_EVERY_S = 25.0  # held sockets keep their heartbeat
BARRIER_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Target:
    """A user to reconnect as: its cursor before the backlog and its inbox head after it."""

    member: Member
    cursor: int
    head: int


@dataclass(frozen=True, slots=True)
class StormJob:
    """Sockets ``first .. first + count - 1`` of the storm (socket ``n`` is user
    ``n mod len(targets)``), all starting at ``start_at`` (Unix time) and given up after
    ``timeout_s``; then held until every process is done (``barrier``)."""

    ws_url: str
    targets: tuple[Target, ...]
    first: int
    count: int
    start_at: float
    timeout_s: float
    barrier: Any = None


@dataclass
class _Stats:
    """One process's tallies."""

    synced: Histogram = field(default_factory=Histogram)
    hello: Histogram = field(default_factory=Histogram)
    refusals: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    entries: int = 0
    last_synced: float = 0.0
    per_second: dict[str, Counter[int]] = field(default_factory=lambda: {
        "refused": Counter(), "hello": Counter(), "synced": Counter()})

    def at(self, what: str, start_at: float) -> float:
        """Count ``what`` in the current second of the storm; seconds since its start."""
        elapsed = time.time() - start_at
        self.per_second[what][int(elapsed)] += 1
        return elapsed


# ---- set-up ---------------------------------------------------------------------------------

async def prepare(base_url: str, members: list[Member], backlog: int) -> list[Target]:
    """Groups of the members, their cursors, ``backlog`` messages to each group, the heads."""
    if len(members) < 2 or backlog < 1:
        raise ValueError("a storm needs at least 2 users and a backlog of at least 1")
    count = -(-len(members) // GROUP_SIZE)
    groups = [members[i::count] for i in range(count)]  # as even as can be: 2 or more each
    ids = await asyncio.gather(*(new_group(base_url, g[0], g[1:]) for g in groups))
    async with aiohttp.ClientSession() as session:
        cursors = await asyncio.gather(*(_head(session, base_url, m, 0) for m in members))
        tag = secrets.token_hex(4)
        await asyncio.gather(*(_send_backlog(session, base_url, g[0], group_id, backlog, tag)
                               for g, group_id in zip(groups, ids, strict=True)))
        heads = await asyncio.gather(*(_head(session, base_url, m, c)
                                       for m, c in zip(members, cursors, strict=True)))
    return [Target(m, c, h) for m, c, h in zip(members, cursors, heads, strict=True)]


async def _head(session: aiohttp.ClientSession, base_url: str, member: Member, cursor: int
                ) -> int:  # fmt: skip
    """The member's inbox head, paging from ``cursor``."""
    while True:
        async with session.get(f"{base_url}/v1/sync", headers=member.headers,
                               params={"cur_max_msg_id": str(cursor), "limit": "1000"}) as r:
            r.raise_for_status()
            page = await r.json()
        cursor = int(page["cur_max_msg_id"])
        if not page["has_more"]:
            return cursor


async def _send_backlog(session: aiohttp.ClientSession, base_url: str, owner: Member,
                        group_id: str, backlog: int, tag: str) -> None:  # fmt: skip
    for k in range(backlog):
        async with session.post(f"{base_url}/v1/messages", headers=owner.headers, json={
                "to_group": group_id, "body": f"storm backlog {k}",
                "client_msg_id": f"storm-{tag}-{group_id}-{k}"}) as r:  # fmt: skip
            r.raise_for_status()


# ---- the storm ------------------------------------------------------------------------------

def run_storm(job: StormJob) -> dict[str, Any]:
    """Run the job on uvloop; sync and hello times (from ``start_at``), refusals, errors."""
    import uvloop

    raise_nofile_limit()
    return uvloop.run(_storm(job))


async def _storm(job: StormJob) -> dict[str, Any]:
    cpu = time.process_time()
    stats = _Stats()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.sleep(max(0.0, job.start_at - time.time()))
        late_s = time.time() - job.start_at  # this process started its sockets that late
        sockets = await asyncio.gather(*(
            _reconnect(session, job, job.targets[(job.first + n) % len(job.targets)], stats)
            for n in range(job.count)))  # fmt: skip
        held = [ws for ws in sockets if ws is not None]
        keepers = [asyncio.create_task(_keep(ws)) for ws in held]
        if job.barrier is not None:
            await asyncio.to_thread(job.barrier.wait, BARRIER_TIMEOUT_S)
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*(ws.close() for ws in held), return_exceptions=True)
    return {
        "sockets": job.count, "synced": stats.synced.count, "attempts": stats.attempts,
        "entries": stats.entries, "refusals": dict(stats.refusals),
        "errors": dict(stats.errors), "sync": stats.synced.to_json(),
        "hello": stats.hello.to_json(), "last_synced": stats.last_synced,
        "client_late_s": late_s, "client_cpu_s": time.process_time() - cpu,
        "per_second": {what: dict(counts) for what, counts in stats.per_second.items()},
    }  # fmt: skip


async def _keep(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Hold a synced socket: read (aiohttp answers the server's pings while reading) and
    ping now and then, as a client does."""
    next_ping = time.monotonic() + PING_EVERY_S
    with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
        while not ws.closed:
            try:
                await ws.receive(max(0.1, next_ping - time.monotonic()))
            except TimeoutError:
                await ws.send_str('{"op":"ping"}')
                next_ping = time.monotonic() + PING_EVERY_S


async def _reconnect(session: aiohttp.ClientSession, job: StormJob, target: Target,
                     stats: _Stats) -> aiohttp.ClientWebSocketResponse | None:  # fmt: skip
    """Connect until synced (the socket, held open) or the job's time is up (None)."""
    backoff = Backoff()
    cursor = target.cursor
    deadline = job.start_at + job.timeout_s
    while time.time() < deadline:
        stats.attempts += 1
        outcome = await _attempt(session, job, target, cursor, stats)
        if isinstance(outcome, aiohttp.ClientWebSocketResponse):
            return outcome
        closed, cursor = outcome
        step = plan(closed, backoff)
        if not isinstance(step, Reconnect):
            stats.errors[f"gave_up:{step.error}"] += 1
            return None
        await asyncio.sleep(min(step.delay_s, max(0.0, deadline - time.time())))
    stats.errors["timeout"] += 1
    return None


async def _attempt(session: aiohttp.ClientSession, job: StormJob, target: Target,
                   cursor: int, stats: _Stats
                   ) -> aiohttp.ClientWebSocketResponse | tuple[Closed, int]:  # fmt: skip
    """One connection: the synced socket, or how it ended and the cursor reached."""
    try:
        ws = await asyncio.wait_for(session.ws_connect(
            job.ws_url, headers=target.member.headers, autoping=True, max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=5)), OPEN_TIMEOUT_S)  # fmt: skip
    except aiohttp.WSServerHandshakeError as exc:
        stats.refusals[str(exc.status)] += 1
        stats.at("refused", job.start_at)
        refused = error_from_response(exc.status, b"", exc.headers or {})  # case-blind
        return Closed(refused=refused), cursor
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        stats.errors[f"connect:{type(exc).__name__}"] += 1
        return Closed(reason=repr(exc)), cursor
    opened = time.time()
    try:
        return await _sync(ws, job, target, cursor, stats)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        stats.errors[f"socket:{type(exc).__name__}"] += 1
        await ws.close()
        return Closed(ws.close_code, uptime_s=time.time() - opened), cursor


async def _sync(ws: aiohttp.ClientWebSocketResponse, job: StormJob, target: Target,
                cursor: int, stats: _Stats
                ) -> aiohttp.ClientWebSocketResponse | tuple[Closed, int]:  # fmt: skip
    """Past ``hello``: sync from ``cursor`` and read until the target head."""
    deadline = job.start_at + job.timeout_s
    message = await ws.receive(OPEN_TIMEOUT_S)
    if message.type != aiohttp.WSMsgType.TEXT or json.loads(message.data).get("op") != "hello":
        await ws.close()
        return Closed(ws.close_code, reason=f"no hello: {message.type.name}"), cursor
    stats.hello.record(stats.at("hello", job.start_at))
    await ws.send_str(json.dumps({"op": "sync", "cur_max_msg_id": str(cursor)}))
    while True:
        message = await ws.receive(max(0.1, deadline - time.time()))
        if message.type != aiohttp.WSMsgType.TEXT:
            return Closed(ws.close_code), cursor
        frame = json.loads(message.data)
        if frame.get("op") == "entries":
            stats.entries += len(frame["entries"])
            cursor = int(frame["cur_max_msg_id"])
            if cursor >= target.head:
                stats.synced.record(stats.at("synced", job.start_at))
                stats.last_synced = max(stats.last_synced, time.time())
                return ws
        elif frame.get("op") == "error":
            stats.errors[f"ws:{frame.get('code')}"] += 1
