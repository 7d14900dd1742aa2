"""One process's part of the idle workload: open many sockets, hold them, close them.

Sockets cycle through a few members' tokens (a device may hold several sockets), are opened
``concurrency`` at a time (the open time of each is connect to ``hello``), kept alive with
pings, and held until a time shared by every process, so the parent can read the server's
memory while all of them are open.

Every socket is read for as long as it is open, though the server sends little: aiohttp
answers the server's protocol pings only inside ``receive``, and the server (uvicorn's
keepalive: a ping every 20 s, 20 s to answer) drops a socket that never answers. Reading also
tells when the server closed a socket, which ``closed`` alone does not (it turns true only
once ``receive`` saw the close frame): such a socket is counted ``dropped``, by close code.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.load.client import Member, open_socket, raise_nofile_limit
from bench.load.histogram import Histogram

BARRIER_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class IdleJob:
    """Open ``count`` sockets with ``members``' tokens; once every process is done opening
    (``barrier``: a ``multiprocessing.Manager().Barrier`` proxy, or None alone), hold them
    ``hold`` s."""

    ws_url: str
    members: tuple[Member, ...]
    count: int
    hold: float
    barrier: Any = None
    concurrency: int = 50


def run_idle(job: IdleJob) -> dict[str, Any]:
    """Run the job on uvloop; open times, failures and the phases' wall times."""
    import uvloop

    raise_nofile_limit()
    return uvloop.run(idle_sockets(job))


async def idle_sockets(job: IdleJob) -> dict[str, Any]:
    """The job on the running loop: open, hold, close; what ``run_idle`` returns."""
    cpu = time.process_time()
    opened: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task[None]] = []
    errors: Counter[str] = Counter()
    closes: Counter[str] = Counter()  # sockets the server closed, by close code
    closing = False
    open_times = Histogram()
    heartbeat_ms = 30_000
    gate = asyncio.Semaphore(job.concurrency)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> None:
            nonlocal heartbeat_ms
            async with gate:
                started = time.time()
                try:
                    ws, heartbeat_ms = await open_socket(session, job.ws_url,
                                                         job.members[n % len(job.members)])
                except Exception as exc:  # counted: a refused socket is a result here
                    errors[type(exc).__name__] += 1
                    return
                open_times.record(time.time() - started)
                opened.append(ws)
                readers.append(asyncio.create_task(read(ws)))

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for _ in ws:  # pings are answered inside receive
                pass
            if not closing:
                closes[str(ws.close_code)] += 1

        open_start = time.time()
        await asyncio.gather(*(one(n) for n in range(job.count)))
        open_end = time.time()
        if job.barrier is not None:  # pings are not due yet: 3 heartbeats is minutes
            await asyncio.to_thread(job.barrier.wait, BARRIER_TIMEOUT_S)
        hold_start = time.time()
        hold_until = hold_start + job.hold
        while time.time() < hold_until:
            await asyncio.sleep(min(heartbeat_ms / 3000, max(0.0, hold_until - time.time())))
            for ws in opened:
                if ws.closed:
                    continue
                try:
                    await ws.send_str('{"op":"ping"}')
                except (aiohttp.ClientError, ConnectionError, RuntimeError):
                    errors["ping_failed"] += 1
        closing = True
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    errors.update({f"closed:{code}": n for code, n in closes.items()})
    return {
        "opened": len(opened), "dropped": closes.total(), "errors": dict(errors),
        "open_start": open_start, "open_end": open_end, "hold_start": hold_start,
        "hold_end": hold_until,
        "open": open_times.to_json(), "client_cpu_s": time.process_time() - cpu,
    }  # fmt: skip
