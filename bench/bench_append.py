"""Append throughput: ``python -m bench.bench_append [--redis-url URL] [--cassandra HOST:PORT]``.

Measures, in one run and against the same servers, 1:1 (2 inboxes) and 100-member fan-out:
- raw limits: pipelined ``XADD`` (Redis) and prepared inserts via ``execute_async`` with about
  128 requests in flight, driven from driver callbacks (Cassandra);
- the Redis log alone (reserve + commit scripts, one message per round trip each);
- the Cassandra durable layer alone (``CassandraInbox.write``: inbox rows + history rows);
- the hybrid store (``HybridInboxStore.append``, the production path).
Prints inbox entries (or rows) per second and per-call latency p50/p95/p99. Without URLs it
starts its own Redis and Cassandra from ``tests.servers``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from redis.asyncio import Redis

from idgen.snowflake import SnowflakeGenerator
from inbox.log_redis import RedisInboxLog, Reservation, draft_to_json
from inbox.models import AppendBatch, EntryDraft, EntryKind, Message
from inbox.store_cassandra import INBOX_STATEMENTS, CassandraInbox, CqlSession, DurableAppend
from inbox.store_hybrid import HybridInboxStore

BODY = "x" * 100


def report(name: str, units: float, seconds: float, lat_s: list[float], unit: str) -> float:
    """Print one result line; return the rate."""
    rate = units / seconds
    if len(lat_s) >= 2:
        cuts = statistics.quantiles(lat_s, n=100, method="inclusive")
        p50, p95, p99 = (cuts[i] * 1e3 for i in (49, 94, 98))
        p = f"p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  p99 {p99:7.2f} ms"
    else:
        p = ""
    print(f"{name:<44} {rate:>11,.0f} {unit}/s  {p}", flush=True)
    return rate


async def drive(op: Callable[[int], Awaitable[None]], count: int, concurrency: int
                ) -> tuple[float, list[float]]:  # fmt: skip
    """Run ``op(i)`` for i < count with ``concurrency`` workers; (seconds, latencies)."""
    latencies: list[float] = []
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _draft(gen: SnowflakeGenerator) -> EntryDraft:
    return EntryDraft(EntryKind.MESSAGE, gen.next_id(), "g:1", 1, 1, int(time.time() * 1000), BODY)


async def bench_redis(url: str, fanouts: list[int], messages: int) -> None:
    """Raw pipelined XADD, then the reserve+commit scripts."""
    redis = Redis.from_url(url)
    log = RedisInboxLog(redis)
    gen = SnowflakeGenerator(1)
    fields: dict[Any, Any] = {"e": draft_to_json(_draft(gen))}
    started = time.perf_counter()
    total = 200_000
    for chunk in range(0, total, 2000):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(chunk, chunk + 2000):
                pipe.xadd(f"raw:{{u:{i % 1000}}}", fields, maxlen=10000, approximate=True)
            await pipe.execute()
    report("redis raw pipelined XADD", total, time.perf_counter() - started, [], "entries")
    for fanout in fanouts:
        base = random.randrange(10**12)
        users = [base + i for i in range(fanout)]
        now = await log.time_ms()
        for uid in users:
            await log.seed(uid, 0, 0, 0, 0, now, 60_000, "bench")

        async def reserve(_: int, users: list[int] = users) -> None:
            res = await log.reserve(users, gen.next_id(), 5000, fields)
            assert isinstance(res, Reservation)
            await log.commit(res, None)

        count = max(200, messages * 20 // fanout)
        seconds, lat = await drive(reserve, count, 16)
        report(f"redis log reserve+commit fan-out {fanout}", count * fanout, seconds, lat,
               "entries")  # fmt: skip
    await redis.aclose()


def raw_cassandra(cql: CqlSession, rows: int, in_flight: int = 128) -> float:
    """Prepared inbox inserts from driver callbacks, ``in_flight`` outstanding; rows/s."""
    session, stmt = cql._session, cql.prepared["insert_entry"]
    gen = SnowflakeGenerator(2)
    done = threading.Event()
    lock = threading.Lock()
    state = {"sent": 0, "left": rows}

    def params() -> tuple[Any, ...]:
        pos = gen.next_id()
        return (random.randrange(10**6), 0, pos, "message", pos, "g:1", 1, 1, 0, BODY, None,
                None, None, 1)  # fmt: skip

    def send() -> None:
        with lock:
            if state["sent"] >= rows:
                return
            state["sent"] += 1
            args = params()
        session.execute_async(stmt, args).add_callbacks(finished, finished)

    def finished(_: Any) -> None:
        with lock:
            state["left"] -= 1
            if state["left"] == 0:
                done.set()
        send()

    started = time.perf_counter()
    for _ in range(in_flight):
        send()
    done.wait()
    seconds = time.perf_counter() - started
    return report("cassandra raw execute_async (128 in flight)", rows, seconds, [], "rows")


async def bench_cassandra(contact: str, keyspace: str, fanouts: list[int], messages: int
                          ) -> CqlSession:  # fmt: skip
    """Raw driver inserts next to ``CassandraInbox.write``."""
    cql = await CqlSession.connect([contact], keyspace, statements=INBOX_STATEMENTS)
    await asyncio.to_thread(raw_cassandra, cql, 3000)  # warm-up
    raw = await asyncio.to_thread(raw_cassandra, cql, 30_000)
    inbox = CassandraInbox(cql)
    gen = SnowflakeGenerator(3)
    for fanout in fanouts:
        users = {random.randrange(10**12) + i: 0 for i in range(fanout)}

        async def write(_: int, users: dict[int, int] = users) -> None:
            draft = _draft(gen)
            message = Message(draft.msg_id, "g:1", 1, 1, BODY, draft.created_at_ms)
            positions = {uid: draft.msg_id for uid in users}
            await inbox.write(DurableAppend(draft, positions, message), None, 1)

        count = max(100, messages * 10 // fanout)
        seconds, lat = await drive(write, count, max(2, 128 // fanout))
        rows = count * (fanout + 3)
        rate = report(f"cassandra store write fan-out {fanout}", rows, seconds, lat, "rows")
        print(f"{'':<44} = {rate / raw:.0%} of the raw driver rate")
    return cql


async def bench_hybrid(url: str, cql: CqlSession, fanouts: list[int], messages: int) -> None:
    """The production append path."""
    redis = Redis.from_url(url, max_connections=1024)
    store = HybridInboxStore(RedisInboxLog(redis), CassandraInbox(cql))
    gen = SnowflakeGenerator(4)
    for fanout in fanouts:
        users = tuple(random.randrange(10**12) + i for i in range(fanout))
        await store.append(AppendBatch(_draft(gen), users))  # seeds the sequencers

        async def append(i: int, users: tuple[int, ...] = users) -> None:
            draft = _draft(gen)
            message = Message(draft.msg_id, "g:1", 1, 1, BODY, draft.created_at_ms)
            await store.append(AppendBatch(draft, users, message, (users[0], f"c{i}"), users[0]))

        count = max(100, messages * 10 // fanout)
        seconds, lat = await drive(append, count, max(4, 256 // fanout))
        report(f"hybrid append fan-out {fanout}", count * fanout, seconds, lat, "entries")
        print(f"{'':<44} = {count / seconds:,.0f} messages/s")
    await redis.aclose()


@contextlib.contextmanager
def servers(redis_url: str | None, cassandra: str | None) -> Iterator[tuple[str, str]]:
    """The given servers, or ones started from ``tests.servers`` for this run."""
    with contextlib.ExitStack() as stack:
        if redis_url is None:
            from tests.servers.redis_server import RedisServer

            redis_url = stack.enter_context(RedisServer()).url
        if cassandra is None:
            from tests.servers.cassandra_server import CassandraServer

            cassandra = stack.enter_context(CassandraServer()).contact_point
        yield redis_url, cassandra


async def main_async(args: argparse.Namespace, redis_url: str, contact: str) -> None:
    """Run every benchmark in order."""
    fanouts = [2, 100]
    keyspace = f"bench_{random.randrange(16**8):08x}"
    await bench_redis(redis_url, fanouts, args.messages)
    cql = await bench_cassandra(contact, keyspace, fanouts, args.messages)
    await bench_hybrid(redis_url, cql, fanouts, args.messages)
    await cql.close()


def main() -> None:
    """Parse flags, start servers if needed, run."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_append")
    parser.add_argument("--redis-url")
    parser.add_argument("--cassandra", help="host:port of a Cassandra node")
    parser.add_argument("--messages", type=int, default=2000, help="scale of each run")
    args = parser.parse_args()
    with servers(args.redis_url, args.cassandra) as (redis_url, contact):
        asyncio.run(main_async(args, redis_url, contact))


if __name__ == "__main__":
    main()
