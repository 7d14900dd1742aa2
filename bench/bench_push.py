"""Push pipeline throughput: ``python bench/bench_push.py [--jobs N] [--redis-url URL]``.

Enqueues N jobs (in fan-out sized batches), then drains them with one PushWorker whose sender
only counts (no network), and prints jobs/s for both phases. Runs the embedded SqliteQueue in
a temp dir, and the RedisQueue too when ``--redis-url`` is given (it uses a fresh stream and
deletes its keys afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idgen.clock import SYSTEM_CLOCK  # noqa: E402
from push.job import PushJob  # noqa: E402
from push.message import PushMessage, PushResult, PushStatus  # noqa: E402
from push.metrics import PushMetrics  # noqa: E402
from push.queue import PushQueue  # noqa: E402
from push.retry import RetryPolicy  # noqa: E402
from push.worker import PushWorker  # noqa: E402


class CountingSender:
    """Accepts every push at once."""

    provider = "fcm"

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, msg: PushMessage) -> PushResult:
        self.sent += 1
        return PushResult(PushStatus.SENT)

    async def aclose(self) -> None:
        pass


class NoTokens:
    async def clear_push(self, device_id: int, token: str | None = None) -> bool:
        return False


def jobs(count: int) -> list[PushJob]:
    now = SYSTEM_CLOCK.now_ms()
    message = PushMessage("fcm", "t" * 64, None, "Alice", "hi", {"id": "1"}, 1, "d:1:2")
    return [PushJob(f"{n}:1", n, n, message, 1, now) for n in range(count)]


async def run(name: str, queue: PushQueue, count: int, batch: int) -> None:
    all_jobs = jobs(count)
    started = time.perf_counter()
    for i in range(0, count, batch):
        await queue.enqueue(all_jobs[i : i + batch])
    enqueue_s = time.perf_counter() - started
    sender = CountingSender()
    worker = PushWorker(
        queue, {"fcm": sender}, NoTokens(), RetryPolicy(), PushMetrics(), SYSTEM_CLOCK, "bench"
    )
    started = time.perf_counter()
    while sender.sent < count:
        await worker.process_once()
    drain_s = time.perf_counter() - started
    print(
        f"{name:7} enqueue {count / enqueue_s:9.0f} jobs/s (batches of {batch})   "
        f"claim+send+ack {count / drain_s:9.0f} jobs/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100, help="jobs per enqueue (one fan-out)")
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()

    from push.queue_sqlite import SqliteQueue

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_queue = SqliteQueue(Path(tmp) / "push.sqlite3")
        try:
            await run("sqlite", sqlite_queue, args.jobs, args.batch)
        finally:
            await sqlite_queue.close()
    if args.redis_url:
        from redis.asyncio import Redis

        from push.queue_redis import RedisQueue

        client = Redis.from_url(args.redis_url)
        stream = f"bench:{{{uuid.uuid4().hex}}}"
        redis_queue = RedisQueue(client, stream=stream)
        try:
            await run("redis", redis_queue, args.jobs, args.batch)
        finally:
            keys = [k async for k in client.scan_iter(match=f"{stream}*", count=1000)]
            for i in range(0, len(keys), 500):
                await client.delete(*keys[i : i + 500])
            await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
