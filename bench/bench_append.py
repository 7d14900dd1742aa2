"""Append throughput: ``python -m bench.bench_append [--redis-url URL] [--cassandra HOST:PORT]``.

Measures, in one run and against the same servers, 1:1 (2 inboxes) and 100-member fan-out,
each case ``--repeat`` times (median printed, every run's rate beside it), with per-call
latency p50/p95/p99 and the ratio to the raw limit measured just before:
- Redis (``bench.append_redis``): raw limits (``redis-benchmark`` XADD, one EVAL doing 100
  XADDs, pipelined XADD from Python), then the log's reserve + commit scripts per message
  and pipelined, with redis-server's CPU beside them;
- Cassandra (``bench.append_cassandra``): raw prepared inserts (windowed ``execute_async``
  sweep, and unlogged batches), then ``CassandraInbox.write``;
- the hybrid store (``HybridInboxStore.append``, the production path: Redis + Cassandra).
Targets (issue 3) are checked at the end. Without URLs it starts its own Redis and Cassandra
from ``tests.servers``. Runs on uvloop, as ``messenger serve`` does under uvicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import Iterator
from functools import partial

from redis.asyncio import Redis

from bench import append_cassandra, append_redis
from bench.measure import Sample, drive, line, load_average, median_of
from idgen.snowflake import SnowflakeGenerator
from inbox.core.models import AppendBatch, EntryDraft, EntryKind, Message
from inbox.messages.durable_cassandra import INBOX_STATEMENTS, CassandraInbox
from inbox.messages.log_redis import RedisInboxLog
from inbox.messages.store_hybrid import HybridInboxStore
from inbox.storage.cql_session import CqlSession

FANOUTS = (2, 100)
REDIS_TARGET = 150_000  # inbox entries/s at fan-out 100
CASSANDRA_TARGET = 8_000  # inbox rows/s
CASSANDRA_RATIO = 0.70  # of the raw driver rate


async def run_redis(url: str, args: argparse.Namespace) -> dict[str, Sample]:
    """Raw limits first, then the log; returns the medians by case."""
    body = append_redis.entry_json(SnowflakeGenerator(9))
    out: dict[str, Sample] = {}
    for key, sample in (("xadd", append_redis.raw_xadd_benchmark(url, body)),
                        ("lua", append_redis.raw_lua_fanout(url, body, 100)),
                        ("floor", append_redis.raw_lua_log_commands(url, body, 100))):
        if sample is None:
            print(f"(redis-benchmark not installed: no {key} raw limit)")
        else:
            print(line(sample), flush=True)
            out[key] = sample
    redis = Redis.from_url(url, max_connections=256)
    log = RedisInboxLog(redis)
    try:
        out["xadd-py"] = await median_of(args.repeat, lambda: append_redis.raw_xadd_python(
            redis, body))  # fmt: skip
        for fanout in FANOUTS:
            count = max(400, args.messages * 20 // fanout)
            raw = out.get("lua") if fanout == 100 else None  # 1:1 is round-trip bound
            case = partial(append_redis.log_per_message, log, fanout, count, body)
            out[f"log{fanout}"] = await median_of(args.repeat, case, raw.rate if raw else None)
        out["pipelined"] = await median_of(args.repeat, lambda: append_redis.log_pipelined(
            log, 100, max(400, args.messages * 20 // 100), body),
            out["lua"].rate if "lua" in out else None)  # fmt: skip
    finally:
        await append_redis.cleanup(redis)
        await redis.aclose()
    return out


async def run_cassandra(cql: CqlSession, args: argparse.Namespace) -> dict[str, Sample]:
    """Raw driver sweep, raw batches, then ``CassandraInbox.write``."""
    out: dict[str, Sample] = {}
    rows = args.messages * 10
    await asyncio.to_thread(append_cassandra.raw_inserts, cql, rows // 4, 1, 256)  # warm-up
    best: Sample | None = None
    for windows, window in append_cassandra.RAW_SWEEP:
        sample = await median_of(args.repeat, partial(
            asyncio.to_thread, append_cassandra.raw_inserts, cql, rows, windows, window))
        if best is None or sample.rate > best.rate:
            best = sample
    assert best is not None
    out["raw"] = best
    print(f"{'':<52} raw driver rate = {best.rate:,.0f} rows/s ({best.name})")
    out["batches"] = await median_of(args.repeat, lambda: asyncio.to_thread(
        append_cassandra.raw_batches, cql, rows, 1, 64))  # fmt: skip
    inbox = CassandraInbox(cql)
    for fanout in FANOUTS:
        count = max(200, rows // (fanout + 2))
        case = partial(append_cassandra.store_write, inbox, fanout, count)
        out[f"store{fanout}"] = sample = await median_of(args.repeat, case, best.rate)
        print(f"{'':<52} all rows (inbox + history) {sample.all_rate:,.0f} rows/s = "
              f"{sample.all_rate / best.rate:.0%} of raw inserts, "
              f"{sample.all_rate / out['batches'].rate:.0%} of raw batches")
    return out


async def run_hybrid(url: str, cql: CqlSession, args: argparse.Namespace
                     ) -> dict[str, Sample]:  # fmt: skip
    """The production append path (reserve, Cassandra write, commit) per message."""
    redis = Redis.from_url(url, max_connections=1024)
    store = HybridInboxStore(RedisInboxLog(redis), CassandraInbox(cql))
    gen = SnowflakeGenerator(4)
    out: dict[str, Sample] = {}
    try:
        for fanout in FANOUTS:
            users = tuple(random.randrange(10**12) + i for i in range(fanout))
            draft = EntryDraft(EntryKind.MESSAGE, gen.next_id(), "g:1", 1, 1, 0, "x")
            await store.append(AppendBatch(draft, users))  # seeds the sequencers

            async def case(users: tuple[int, ...] = users, fanout: int = fanout) -> Sample:
                async def append(_: int) -> None:
                    msg_id = gen.next_id()
                    draft = EntryDraft(EntryKind.MESSAGE, msg_id, "g:1", 1, 1,
                                       int(time.time() * 1000), append_redis.BODY)  # fmt: skip
                    message = Message(msg_id, "g:1", 1, 1, append_redis.BODY, 0)
                    await store.append(AppendBatch(draft, users, message, (users[0], f"c{msg_id}"),
                                                   users[0]))  # fmt: skip

                count = max(200, args.messages * 10 // fanout)
                seconds, lat, cpu = await drive(append, count, max(4, 256 // fanout))
                return Sample(f"hybrid append fan-out {fanout}", count * fanout, seconds,
                              "entries", lat, cpu, f"{count / seconds:,.0f} msgs/s")  # fmt: skip

            out[f"hybrid{fanout}"] = await median_of(args.repeat, case)
    finally:
        await redis.aclose()
    return out


def verdict(redis: dict[str, Sample], cassandra: dict[str, Sample]) -> None:
    """Print the issue's targets against the medians."""
    print("\ntargets (issue 3):")
    rate = redis["log100"].rate
    floor = redis.get("floor")
    versus = f" = {rate / floor.rate:.0%} of the scripts' floor {floor.rate:,.0f}" if floor else ""
    print(f"  redis fan-out 100 >= {REDIS_TARGET:,} entries/s: {rate:,.0f}{versus} "
          f"{'MET' if rate >= REDIS_TARGET else 'NOT MET'}")
    raw = cassandra["raw"].rate
    for fanout in FANOUTS:
        rate = cassandra[f"store{fanout}"].rate
        ok = rate >= CASSANDRA_TARGET and rate >= CASSANDRA_RATIO * raw
        print(f"  cassandra fan-out {fanout} >= {CASSANDRA_TARGET:,} inbox rows/s and >= "
              f"{CASSANDRA_RATIO:.0%} of raw {raw:,.0f}: {rate:,.0f} ({rate / raw:.0%}) "
              f"{'MET' if ok else 'NOT MET'}")


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


async def measure(args: argparse.Namespace, redis_url: str, contact: str
                  ) -> dict[str, dict[str, Sample]]:  # fmt: skip
    """Run the groups of ``args.only`` in order; their medians by group and case."""
    out: dict[str, dict[str, Sample]] = {}
    if "redis" in args.only:
        out["redis"] = await run_redis(redis_url, args)
    if "cassandra" in args.only or "hybrid" in args.only:
        keyspace = f"bench_{random.randrange(16**8):08x}"
        cql = await CqlSession.connect([contact], keyspace, statements=INBOX_STATEMENTS)
        try:
            if "cassandra" in args.only:
                out["cassandra"] = await run_cassandra(cql, args)
            if "hybrid" in args.only:
                out["hybrid"] = await run_hybrid(redis_url, cql, args)
        finally:
            # Dropped so that the node does not spend the next run compacting this one's rows.
            await asyncio.to_thread(cql.session.execute, f"DROP KEYSPACE IF EXISTS {keyspace}")
            await cql.close()
    return out


async def main_async(args: argparse.Namespace, redis_url: str, contact: str) -> None:
    """Run every benchmark in order."""
    print(f"{load_average()}; {args.repeat} runs per case, median shown", flush=True)
    out = await measure(args, redis_url, contact)
    print(load_average())
    if "redis" in out and "cassandra" in out:
        verdict(out["redis"], out["cassandra"])


def main() -> None:
    """Parse flags, start servers if needed, run."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_append")
    parser.add_argument("--redis-url")
    parser.add_argument("--cassandra", help="host:port of a Cassandra node")
    parser.add_argument("--messages", type=int, default=2000, help="scale of each run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median shown)")
    parser.add_argument("--only", nargs="+", default=["redis", "cassandra", "hybrid"],
                        choices=["redis", "cassandra", "hybrid"])  # fmt: skip
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    with servers(args.redis_url, args.cassandra) as (redis_url, contact):
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(main_async(args, redis_url, contact))
        else:
            asyncio.run(main_async(args, redis_url, contact))


if __name__ == "__main__":
    main()
