"""A worker process killed with SIGKILL after claiming a job from Redis: another worker gets
the job once the visibility timeout has passed, and sends it once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

from redis.asyncio import Redis

from idgen.clock import SYSTEM_CLOCK
from push.metrics import PushMetrics
from push.queue_redis import RedisQueue
from push.retry import RetryPolicy
from push.sender_fcm import FcmSender
from push.worker import PushWorker
from tests.push.fake_fcm import FakeFcm
from tests.push.support import MemoryAccounts, RedisUrl, make_job

REPO = Path(__file__).resolve().parents[2]
VISIBILITY_MS = 1000

_CLAIM_AND_HANG = textwrap.dedent(
    """
    import asyncio, sys
    from redis.asyncio import Redis
    from push.queue_redis import RedisQueue

    async def main(url: str, stream: str, visibility_ms: int) -> None:
        queue = RedisQueue(Redis.from_url(url), stream=stream, visibility_timeout_ms=visibility_ms)
        claimed = await queue.claim("doomed", 10, 5000)
        print(" ".join(c.job.job_id for c in claimed), flush=True)
        await asyncio.sleep(3600)  # "sending" forever, until SIGKILL

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_job_claimed_by_a_killed_process_is_redelivered(
    redis_server: RedisUrl,
    redis_client: Redis,
    redis_stream: str,
    fake_fcm: FakeFcm,
    fcm_credentials: Path,
) -> None:
    queue = RedisQueue(redis_client, stream=redis_stream, visibility_timeout_ms=VISIBILITY_MS)
    job = make_job(first_enqueued_ms=SYSTEM_CLOCK.now_ms())
    await queue.enqueue([job])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CLAIM_AND_HANG,
        redis_server.url,
        redis_stream,
        str(VISIBILITY_MS),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )
    sender = FcmSender(fcm_credentials, endpoint=fake_fcm.base_url, timeout_s=5.0)
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        claimed_at = asyncio.get_running_loop().time()
        assert line.decode().split() == [job.job_id]
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL

        metrics = PushMetrics()
        survivor = PushWorker(
            queue,
            {"fcm": sender},
            MemoryAccounts(),
            RetryPolicy(),
            metrics,
            SYSTEM_CLOCK,
            "survivor",
        )
        if asyncio.get_running_loop().time() - claimed_at < VISIBILITY_MS / 2000:
            assert await survivor.process_once() == 0  # still held by the dead consumer
        await asyncio.sleep(VISIBILITY_MS / 1000 + 0.1)
        assert await survivor.process_once() == 1
        assert metrics.get("sent", "fcm") == 1
        assert len(fake_fcm.requests) == 1

        await asyncio.sleep(VISIBILITY_MS / 1000 + 0.1)
        assert await survivor.process_once() == 0  # acked: never again
        assert len(fake_fcm.requests) == 1
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await sender.aclose()
        await queue.close()
