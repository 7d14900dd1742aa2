"""Redis cases of ``bench.bench_append``: raw limits of the server, then the inbox log.

Raw limits, measured on the same server in the same run:
- ``redis-benchmark`` (C client, 16-deep pipeline) running ``XADD``: what the server does
  when the client costs nothing;
- ``redis-benchmark`` running one ``EVAL`` that does ``fanout`` XADDs: the ceiling of any
  fan-out done inside Redis by a script;
- ``redis-benchmark`` running one ``EVAL`` of the four commands the log runs per recipient,
  without its logic: the floor of the log's scripts (mostly the cost of each ``redis.call``);
- pipelined ``XADD`` from this Python client: what the client library can push.

Then the log (``RedisInboxLog``): reserve + commit per message, each its own round trip, from
16 concurrent senders (the production shape), and the same with 16 messages' scripts
pipelined per round trip. Each log case also reports redis-server's CPU (``INFO cpu``) and
the scripts' time per message (``INFO commandstats``), to tell a busy server from a busy
client.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import time
from typing import Any
from urllib.parse import urlparse

from redis.asyncio import Redis

from bench.measure import Sample, drive
from idgen.snowflake import SnowflakeGenerator
from inbox.core.models import EntryDraft, EntryKind
from inbox.messages.log_redis import RedisInboxLog, Reservation, draft_to_json, meta_key, stream_key

BODY = "x" * 100
SENDERS = 16
LUA_FANOUT = "for i = 1, #KEYS do redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*', " \
    "'e', ARGV[2]) end return #KEYS"  # fmt: skip
LUA_LOG_COMMANDS = (
    "for i = 1, #KEYS do redis.call('HMGET', KEYS[i], 'head', 'last', 'recover', 'era') "
    "redis.call('XADD', 's' .. KEYS[i], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2]) "
    "redis.call('HSET', KEYS[i], 'head', '1', 'p:1', '1') "
    "redis.call('HDEL', KEYS[i], 'p:1') end return #KEYS"
)
"""The commands the log's two scripts run per recipient (sequencer read, stream append,
sequencer + pending mark, clearing the mark) with none of their logic: their floor."""


def entry_json(gen: SnowflakeGenerator) -> str:
    """The stream entry of a 100-byte message, as the hybrid store writes it."""
    draft = EntryDraft(EntryKind.MESSAGE, gen.next_id(), "g:1", 1, 1, int(time.time() * 1000),
                       BODY)  # fmt: skip
    return draft_to_json(draft)


async def server_cpu(redis: Redis) -> float:
    """redis-server's CPU seconds so far (user + system, all its threads)."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def script_usec(redis: Redis) -> tuple[int, int]:
    """(calls, microseconds) of EVALSHA so far, from ``INFO commandstats``."""
    stats = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _benchmark_argv(url: str) -> list[str] | None:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return None
    parts = urlparse(url)
    argv = [exe, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.password:
        argv += ["-a", parts.password]
    if parts.path.strip("/"):
        argv += ["--dbnum", parts.path.strip("/")]
    return argv


def redis_benchmark(url: str, name: str, requests: int, units_per_request: int,
                    command: list[str]) -> Sample | None:  # fmt: skip
    """Run ``redis-benchmark`` (16-deep pipeline, 16 clients) on ``command``; None if the
    tool is not installed."""
    argv = _benchmark_argv(url)
    if argv is None:
        return None
    argv += ["-n", str(requests), "-c", str(SENDERS), "-P", "16", "-q", "--csv", *command]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True).stdout
    # "name","rps","avg",...,"max": the name is not escaped, so count from the right
    rps = float(out.strip().splitlines()[-1].rsplit(",", 7)[1].strip('"'))
    return Sample(name, requests * units_per_request, requests / rps, "entries")


def raw_xadd_benchmark(url: str, body: str) -> Sample | None:
    """``redis-benchmark`` XADD into 1000 streams."""
    command = ["XADD", "rawb:{u:__rand_int__}", "MAXLEN", "~", "10000", "*", "e", body]
    return redis_benchmark(url, "redis raw XADD (redis-benchmark, C client)", 400_000, 1,
                           ["-r", "1000", *command])  # fmt: skip


def raw_lua_fanout(url: str, body: str, fanout: int) -> Sample | None:
    """``redis-benchmark`` running one EVAL of ``fanout`` XADDs per request."""
    return _raw_eval(url, body, fanout, LUA_FANOUT, "rawlua",
                     f"redis raw EVAL of {fanout} XADDs (redis-benchmark)", 400_000)


def raw_lua_log_commands(url: str, body: str, fanout: int) -> Sample | None:
    """``redis-benchmark`` running one EVAL of the log's four commands per recipient."""
    return _raw_eval(url, body, fanout, LUA_LOG_COMMANDS, "rawlog",
                     f"redis raw EVAL of the log's 4 commands x {fanout}", 200_000)


def _raw_eval(url: str, body: str, fanout: int, script: str, prefix: str, name: str,
              entries: int) -> Sample | None:  # fmt: skip
    """``script`` over ``fanout`` keys ``<prefix>:{u:<i>}`` (ARGV: maxlen, body), about
    ``entries`` entries in all."""
    keys = [f"{prefix}:{{u:{i}}}" for i in range(fanout)]
    command = ["EVAL", script, str(fanout), *keys, "10000", body]
    return redis_benchmark(url, name, max(2000, entries // fanout), fanout, command)


async def raw_xadd_python(redis: Redis, body: str, total: int = 200_000) -> Sample:
    """Pipelined XADD (2000 per round trip) from this Python client into 1000 streams."""
    fields: dict[Any, Any] = {"e": body}
    cpu, started = time.process_time(), time.perf_counter()
    for chunk in range(0, total, 2000):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(chunk, chunk + 2000):
                pipe.xadd(f"raw:{{u:{i % 1000}}}", fields, maxlen=10000, approximate=True)
            await pipe.execute()
    seconds = time.perf_counter() - started
    return Sample("redis raw pipelined XADD (Python client)", total, seconds, "entries",
                  cpu_seconds=time.process_time() - cpu)  # fmt: skip


async def cleanup(redis: Redis, users: list[int] | None = None) -> None:
    """Delete what the cases wrote: the users' inboxes, or (no users) the raw cases' keys."""
    if users is not None:
        await redis.unlink(*(k for u in users for k in (meta_key(u), stream_key(u))))
        return
    for pattern in ("raw:*", "rawb:*", "rawlua:*", "rawlog:*", "srawlog:*"):
        keys = [key async for key in redis.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.unlink(*keys[start:start + 1000])


async def seeded_users(log: RedisInboxLog, fanout: int) -> list[int]:
    """``fanout`` fresh inboxes with their sequencers seeded."""
    base = random.randrange(10**12)
    users = [base + i for i in range(fanout)]
    now = await log.time_ms()
    await asyncio.gather(*(log.seed(uid, 0, 0, 0, 0, now, 60_000, "bench") for uid in users))
    return users


async def _server_notes(redis: Redis, before: tuple[float, int, int], seconds: float,
                        messages: int) -> str:  # fmt: skip
    cpu = await server_cpu(redis) - before[0]
    calls, usec = await script_usec(redis)
    per_msg = (usec - before[2]) / messages
    return (f"{messages / seconds:,.0f} msgs/s; redis-server {cpu / seconds:.2f} cores, "
            f"scripts {per_msg:.0f} us/msg ({calls - before[1]} calls)")


async def _server_before(redis: Redis) -> tuple[float, int, int]:
    return (await server_cpu(redis), *await script_usec(redis))


async def log_per_message(log: RedisInboxLog, fanout: int, messages: int, body: str) -> Sample:
    """Reserve + commit for each message, one round trip each, ``SENDERS`` concurrent."""
    users = await seeded_users(log, fanout)
    gen = SnowflakeGenerator(1)
    fields = {"e": body}

    async def send(_: int) -> None:
        res = await log.reserve(users, gen.next_id(), 5000, fields)
        assert isinstance(res, Reservation)
        assert await log.commit(res, None) == "ok"

    before = await _server_before(log.redis)
    seconds, lat, cpu = await drive(send, messages, SENDERS)
    notes = await _server_notes(log.redis, before, seconds, messages)
    await cleanup(log.redis, users)
    return Sample(f"redis log reserve+commit fan-out {fanout}", messages * fanout, seconds,
                  "entries", lat, cpu, notes)  # fmt: skip


async def log_pipelined(log: RedisInboxLog, fanout: int, messages: int, body: str,
                        depth: int = 16) -> Sample:  # fmt: skip
    """``depth`` messages' reserves in one round trip, then their commits in one."""
    users = await seeded_users(log, fanout)
    gen = SnowflakeGenerator(2)
    fields = {"e": body}

    async def send_batch(_: int) -> None:
        requests = [(users, gen.next_id(), fields) for _ in range(depth)]
        reserved = await log.reserve_many(requests, 5000)
        assert all(isinstance(r, Reservation) for r in reserved)
        outcomes = await log.commit_many([r for r in reserved if isinstance(r, Reservation)])
        assert outcomes == ["ok"] * depth

    batches = max(1, messages // depth)
    before = await _server_before(log.redis)
    seconds, lat, cpu = await drive(send_batch, batches, 2)
    notes = await _server_notes(log.redis, before, seconds, batches * depth)
    await cleanup(log.redis, users)
    return Sample(f"redis log fan-out {fanout}, {depth} msgs pipelined", batches * depth * fanout,
                  seconds, "entries", lat, cpu, notes)  # fmt: skip
