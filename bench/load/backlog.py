"""W3: a device reconnecting to a backlog; time from connect + ``sync`` until caught up.

The backlog (``size`` messages to a fresh recipient, sent over a few senders' sockets with a
window of unanswered sends each) is built while the recipient is offline. Then the recipient
connects, sends ``{"op": "sync", "cur_max_msg_id": 0}`` and reads ``entries`` frames until it
holds every message: first **hot** (the production store serves it from the Redis stream),
then, with a Redis URL, **cold**: the stream is trimmed to nothing (``XTRIM MAXLEN 0``, as
``MAXLEN ~`` would trim an old inbox), so the hybrid store sees a cursor older than the stream
holds and reads Cassandra. (Deleting the key instead would make the store think the stream
holds everything: trimming is how entries leave it.)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.load.client import Member, open_socket, raise_nofile_limit
from bench.load.schedule import client_msg_id, encode_body, parse_body

CATCH_UP_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class BacklogJob:
    """Build a backlog of ``size`` for ``recipient`` and time its catch-up (hot, then cold)."""

    ws_url: str
    tag: str
    recipient: Member
    senders: tuple[Member, ...]
    size: int
    redis_url: str | None = None
    window: int = 32
    body_bytes: int = 100


def run_backlog(job: BacklogJob) -> dict[str, Any]:
    """Run the job on uvloop; build and catch-up timings."""
    import uvloop

    raise_nofile_limit()
    return uvloop.run(_backlog(job))


async def _backlog(job: BacklogJob) -> dict[str, Any]:
    errors: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        started = time.time()
        await asyncio.gather(*(_send_share(session, job, n, errors)
                               for n in range(len(job.senders))))  # fmt: skip
        built = time.time()
        await asyncio.sleep(1.0)  # let the last fan-out settle before measuring
        phases = [await _catch_up(session, job, "hot", errors)]
        if job.redis_url is not None:
            await _evict(job)
            phases.append(await _catch_up(session, job, "cold", errors))
    return {"size": job.size, "build_s": built - started, "build_start": started,
            "build_end": built, "phases": phases, "errors": dict(errors)}  # fmt: skip


async def _send_share(session: aiohttp.ClientSession, job: BacklogJob, n: int,
                      errors: Counter[str]) -> None:  # fmt: skip
    """Sender ``n`` sends messages ``n, n + senders, ...`` with a window of open sends."""
    ws, _ = await open_socket(session, job.ws_url, job.senders[n])
    window = asyncio.Semaphore(job.window)
    mine = range(n, job.size, len(job.senders))
    answered = asyncio.Event()
    pending = len(mine)

    async def read() -> None:
        nonlocal pending
        async for message in ws:
            frame = json.loads(message.data)
            if frame.get("op") in ("sent", "error"):
                if frame["op"] == "error":
                    errors[f"ws:{frame.get('code')}"] += 1
                window.release()
                pending -= 1
                if pending == 0:
                    answered.set()

    reader = asyncio.create_task(read())
    for k in mine:
        await window.acquire()
        await ws.send_str(json.dumps({
            "op": "send", "to_user": job.recipient.user_id,
            "body": encode_body(job.tag, k, time.time(), job.body_bytes),
            "client_msg_id": client_msg_id(job.tag, k)}))  # fmt: skip
    try:
        await asyncio.wait_for(answered.wait(), CATCH_UP_TIMEOUT_S)
    finally:
        reader.cancel()
        await ws.close()


async def _catch_up(session: aiohttp.ClientSession, job: BacklogJob, name: str,
                    errors: Counter[str]) -> dict[str, Any]:  # fmt: skip
    """Connect, sync from 0 and read until every backlog message arrived."""
    stream_len = await _stream_len(job)
    started = time.time()
    ws, _ = await open_socket(session, job.ws_url, job.recipient)
    hello = time.time()
    await ws.send_str(json.dumps({"op": "sync", "cur_max_msg_id": "0"}))
    seen: set[int] = set()
    frames = 0
    deadline = started + CATCH_UP_TIMEOUT_S
    try:
        while len(seen) < job.size and time.time() < deadline:
            message = await ws.receive(max(0.1, deadline - time.time()))
            if message.type != aiohttp.WSMsgType.TEXT:
                errors[f"{name}:socket_{message.type.name.lower()}"] += 1
                break
            frame = json.loads(message.data)
            if frame.get("op") == "entries":
                frames += 1
                for entry in frame["entries"]:
                    parsed = parse_body(entry.get("body"), job.tag)
                    if parsed is not None:
                        seen.add(parsed[0])
            elif frame.get("op") == "error":
                errors[f"{name}:ws:{frame.get('code')}"] += 1
    except TimeoutError:
        errors[f"{name}:timeout"] += 1
    done = time.time()
    await ws.close()
    return {"name": name, "start": started, "end": done, "seconds": done - started,
            "connect_s": hello - started, "entries": len(seen), "frames": frames,
            "entries_per_s": len(seen) / (done - started) if done > started else 0.0,
            "stream_len_before": stream_len}  # fmt: skip


async def _stream_len(job: BacklogJob) -> int | None:
    """How many entries the recipient's Redis stream holds (None without Redis)."""
    if job.redis_url is None:
        return None
    from redis.asyncio import Redis

    from inbox.messages.log_redis import stream_key

    redis = Redis.from_url(job.redis_url)
    try:
        return int(await redis.xlen(stream_key(int(job.recipient.user_id))))
    finally:
        await redis.aclose()


async def _evict(job: BacklogJob) -> None:
    """Trim the recipient's stream to nothing, as ``MAXLEN ~`` does to an old inbox."""
    assert job.redis_url is not None
    from redis.asyncio import Redis

    from inbox.messages.log_redis import stream_key

    redis = Redis.from_url(job.redis_url)
    try:
        await redis.xtrim(stream_key(int(job.recipient.user_id)), maxlen=0, approximate=False)
    finally:
        await redis.aclose()
