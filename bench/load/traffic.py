"""One load-generator process's part of a chat workload (W1, W1-REST, W2): runs in a pool
worker with its own event loop.

The process holds some sockets, drives some senders on the shared ``Schedule`` (over their
sockets' ``send`` op, or ``POST /v1/messages``) and watches its sockets for the messages they
must receive. A send fires at its due time whatever happened to the previous ones (open loop);
each sender has its own task, so a socket the server is slow to read never holds up another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.load.client import Member, open_socket, raise_nofile_limit
from bench.load.histogram import Histogram
from bench.load.schedule import (
    Schedule,
    client_msg_id,
    encode_body,
    parse_body,
    parse_client_msg_id,
)

OPEN_CONCURRENCY = 32
REST_CONNECTIONS = 256  # per process; a send waiting for a connection still counts from due


@dataclass(frozen=True, slots=True)
class SenderPlan:
    """A sender this process drives: global index in the schedule, the local socket (or its
    member's token, for REST) it sends with, and where to."""

    index: int
    socket: int
    to_user: str | None = None
    to_group: str | None = None


@dataclass(frozen=True, slots=True)
class StepTiming:
    """Per-step knobs: latencies of messages due in the first ``warmup`` s are not recorded;
    sockets wait ``grace`` s after the last send for what is still in flight."""

    warmup: float = 2.0
    grace: float = 10.0
    body_bytes: int = 100


@dataclass(frozen=True, slots=True)
class TrafficJob:
    """What one process does in one step."""

    base_url: str
    ws_url: str
    tag: str
    via: str  # "ws" or "rest"
    sockets: tuple[Member, ...]
    senders: tuple[SenderPlan, ...]
    watch: tuple[tuple[int, tuple[int, ...]], ...]  # (global sender, local sockets receiving)
    schedule: Schedule
    timing: StepTiming = StepTiming()


def run_traffic(job: TrafficJob) -> dict[str, Any]:
    """Run the job on uvloop; its counts and histograms (JSON-ready)."""
    import uvloop

    raise_nofile_limit()
    return uvloop.run(Traffic(job).run())


class Traffic:
    """The state of one job: sockets, counters and histograms."""

    def __init__(self, job: TrafficJob) -> None:
        self.job = job
        self.schedule = job.schedule
        self.measure_from = job.schedule.start + job.timing.warmup
        self.watch = {sender: frozenset(socks) for sender, socks in job.watch}
        watched = sorted({s for socks in self.watch.values() for s in socks})
        self.seen = {s: bytearray(self.schedule.count) for s in watched}
        self.expected = sum(len(self.watch.get(self.schedule.sender(k), ()))
                            for k in range(self.schedule.count))  # fmt: skip
        self.expected_measured = sum(
            len(self.watch.get(self.schedule.sender(k), ())) for k in range(self.schedule.count)
            if self.schedule.due(k) >= self.measure_from)  # fmt: skip
        self.received = self.received_measured = self.in_window = self.duplicates = 0
        self.sent = self.acked = 0
        self.planned = sum(1 for plan in job.senders
                           for _ in self.schedule.messages_of(frozenset({plan.index})))
        self.latency, self.ack, self.lateness = Histogram(), Histogram(), Histogram()
        self.errors: Counter[str] = Counter()
        self.last_receive = 0.0
        self.done = asyncio.Event()
        self.closing = False
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.heartbeat_ms = 30_000

    async def run(self) -> dict[str, Any]:
        cpu = time.process_time()
        connector = aiohttp.TCPConnector(limit=REST_CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector) as session:
            await self._open(session)
            ready = time.time()
            readers = [asyncio.create_task(self._read(i, ws)) for i, ws in enumerate(self.sockets)]
            pinger = asyncio.create_task(self._ping())
            self._check_done()
            await asyncio.gather(*(self._drive(session, plan) for plan in self.job.senders))
            wait = max(0.0, self.schedule.end + self.job.timing.grace - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), wait)
            self.closing = True
            pinger.cancel()
            await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
            for task in readers:
                task.cancel()
        return {
            "sockets": len(self.sockets), "sent": self.sent, "acked": self.acked,
            "expected": self.expected,
            "received": self.received, "expected_measured": self.expected_measured,
            "received_measured": self.received_measured, "in_window": self.in_window,
            "duplicates": self.duplicates,
            "errors": dict(self.errors), "last_receive": self.last_receive,
            "ready_late_s": max(0.0, ready - self.schedule.start),
            "missing_sample": self._missing_sample(),
            "latency": self.latency.to_json(), "ack": self.ack.to_json(),
            "lateness": self.lateness.to_json(), "client_cpu_s": time.process_time() - cpu,
        }  # fmt: skip

    async def _open(self, session: aiohttp.ClientSession) -> None:
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def one(member: Member) -> aiohttp.ClientWebSocketResponse:
            async with gate:
                ws, self.heartbeat_ms = await open_socket(session, self.job.ws_url, member)
                return ws

        self.sockets = list(await asyncio.gather(*(one(m) for m in self.job.sockets)))

    async def _read(self, index: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        tag = self.job.tag
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            op = frame.get("op")
            if op == "entries":
                now = time.time()
                for entry in frame["entries"]:
                    if entry.get("kind") == "message":
                        parsed = parse_body(entry.get("body"), tag)
                        if parsed is not None:
                            self._delivered(index, parsed[0], parsed[1], now)
            elif op == "sent":
                k = parse_client_msg_id(frame.get("client_msg_id"), tag)
                if k is not None:
                    self._acked(k)
            elif op == "error":
                self.errors[f"ws:{frame.get('code')}"] += 1
        if not self.closing:
            self.errors["socket_closed"] += 1

    def _delivered(self, index: int, k: int, due: float, now: float) -> None:
        if index not in self.watch.get(self.schedule.sender(k), ()) or k >= self.schedule.count:
            return  # e.g. the sender's own copy in a 1:1 chat
        seen = self.seen[index]
        if seen[k]:
            self.duplicates += 1
            return
        seen[k] = 1
        self.received += 1
        self.last_receive = now
        if self.measure_from <= now <= self.schedule.end:
            self.in_window += 1  # throughput: deliveries that landed in the measured window
        if due >= self.measure_from:
            self.received_measured += 1
            self.latency.record(now - due)
        self._check_done()

    def _check_done(self) -> None:
        """Done once every delivery and every answer came (a ``sent`` frame may follow the
        entries it answers, so deliveries alone would close the sockets too early)."""
        if self.received >= self.expected and self.acked >= self.planned:
            self.done.set()

    def _missing_sample(self, limit: int = 10) -> list[dict[str, Any]]:
        """A few deliveries that never came: message, due time, sender and recipient ids."""
        out: list[dict[str, Any]] = []
        for sender, sockets in self.watch.items():
            plan = next((p for p in self.job.senders if p.index == sender), None)
            for k in self.schedule.messages_of(frozenset({sender})):
                for socket in sockets:
                    if not self.seen[socket][k] and len(out) < limit:
                        out.append({"k": k, "due": self.schedule.due(k),
                                    "to": self.job.sockets[socket].user_id,
                                    "from": (self.job.sockets[plan.socket].user_id
                                             if plan else None)})  # fmt: skip
        return out

    def _acked(self, k: int) -> None:
        self.acked += 1
        due = self.schedule.due(k)
        if due >= self.measure_from:
            self.ack.record(time.time() - due)
        self._check_done()

    async def _drive(self, session: aiohttp.ClientSession, plan: SenderPlan) -> None:
        """Send every message of one sender at its due time."""
        job, tasks = self.job, []
        target: dict[str, Any] = ({"to_user": plan.to_user} if plan.to_user
                                  else {"to_group": plan.to_group})  # fmt: skip
        for k in self.schedule.messages_of(frozenset({plan.index})):
            due = self.schedule.due(k)
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.lateness.record(time.time() - due)
            body = {"body": encode_body(job.tag, k, due, job.timing.body_bytes),
                    "client_msg_id": client_msg_id(job.tag, k), **target}  # fmt: skip
            self.sent += 1
            if job.via == "rest":
                tasks.append(asyncio.create_task(self._post(session, plan, k, body)))
                continue
            try:
                await self.sockets[plan.socket].send_str(json.dumps({"op": "send", **body}))
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                self.errors["ws_send_failed"] += 1
        await asyncio.gather(*tasks)

    async def _post(self, session: aiohttp.ClientSession, plan: SenderPlan, k: int,
                    body: dict[str, Any]) -> None:  # fmt: skip
        headers = self.job.sockets[plan.socket].headers
        try:
            async with session.post(f"{self.job.base_url}/v1/messages", json=body,
                                    headers=headers) as response:  # fmt: skip
                await response.read()
                if response.status == 201:
                    self._acked(k)
                else:
                    self.errors[f"http:{response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError, ConnectionError):
            self.errors["http_failed"] += 1

    async def _ping(self) -> None:
        """Keep every socket alive: a ping frame each third of the heartbeat interval."""
        while True:
            await asyncio.sleep(self.heartbeat_ms / 3000)
            for ws in self.sockets:
                if not ws.closed:
                    await ws.send_str('{"op":"ping"}')
