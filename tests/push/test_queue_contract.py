"""The PushQueue contract, run against every backend (SqliteQueue, RedisQueue on real Redis)."""

from __future__ import annotations

import asyncio

from push.queue import PushQueue
from tests.push.support import START_MS, VISIBILITY_MS, ManualClock, make_job


async def expire_claims(clock: ManualClock) -> None:
    """Let every claim outlive the visibility timeout: on the queue's clock (SQLite) and in
    real time (Redis measures idle time itself)."""
    clock.advance(VISIBILITY_MS / 1000 + 0.001)
    await asyncio.sleep(VISIBILITY_MS / 1000 + 0.05)


async def test_enqueued_job_is_claimed_once_with_its_content(push_queue: PushQueue) -> None:
    job = make_job()
    assert await push_queue.enqueue([job]) == 1

    [claimed] = await push_queue.claim("a", 10, 0)
    assert claimed.job == job
    assert claimed.consumer == "a"
    assert await push_queue.claim("b", 10, 0) == []


async def test_claim_returns_oldest_first_up_to_count(push_queue: PushQueue) -> None:
    jobs = [make_job(f"1001:{n}") for n in range(5)]
    assert await push_queue.enqueue(jobs) == 5

    first = await push_queue.claim("a", 3, 0)
    second = await push_queue.claim("a", 3, 0)
    assert [c.job.job_id for c in first] == ["1001:0", "1001:1", "1001:2"]
    assert [c.job.job_id for c in second] == ["1001:3", "1001:4"]


async def test_same_job_id_enqueued_twice_is_one_job(push_queue: PushQueue) -> None:
    assert await push_queue.enqueue([make_job("7:1"), make_job("7:1")]) == 1
    assert await push_queue.enqueue([make_job("7:1")]) == 0

    assert len(await push_queue.claim("a", 10, 0)) == 1
    assert await push_queue.enqueue([make_job("7:1")]) == 0  # while claimed
    assert await push_queue.claim("a", 10, 0) == []


async def test_acked_job_is_never_delivered_again(
    push_queue: PushQueue, manual_clock: ManualClock
) -> None:
    await push_queue.enqueue([make_job()])
    [claimed] = await push_queue.claim("a", 10, 0)

    assert await push_queue.ack(claimed) is True
    await expire_claims(manual_clock)
    assert await push_queue.claim("b", 10, 0) == []
    assert await push_queue.enqueue([make_job()]) == 0  # a re-enqueued fan-out sends nothing
    assert await push_queue.claim("b", 10, 0) == []
    assert await push_queue.ack(claimed) is False


async def test_unsettled_claim_is_handed_to_another_consumer_after_visibility_timeout(
    push_queue: PushQueue, manual_clock: ManualClock
) -> None:
    await push_queue.enqueue([make_job()])
    [lost] = await push_queue.claim("dies", 10, 0)
    assert await push_queue.claim("b", 10, 0) == []

    await expire_claims(manual_clock)
    [again] = await push_queue.claim("b", 10, 0)

    assert again.job == lost.job
    assert again.consumer == "b"
    assert await push_queue.ack(again) is True
    await expire_claims(manual_clock)
    assert await push_queue.claim("c", 10, 0) == []


async def test_retry_replaces_the_job_with_its_next_attempt_when_due(
    push_queue: PushQueue, manual_clock: ManualClock
) -> None:
    await push_queue.enqueue([make_job()])
    [claimed] = await push_queue.claim("a", 10, 0)

    assert await push_queue.retry(claimed, 7.0) is True
    manual_clock.advance(6.9)
    assert await push_queue.claim("a", 10, 0) == []
    manual_clock.advance(0.1)
    [again] = await push_queue.claim("a", 10, 0)

    assert again.job.job_id == claimed.job.job_id
    assert again.job.attempt == 2
    assert again.job.first_enqueued_ms == START_MS
    assert again.job.message == claimed.job.message
    assert await push_queue.enqueue([make_job()]) == 0  # still one job


async def test_retry_and_dead_letter_of_a_lost_claim_change_nothing(
    push_queue: PushQueue, manual_clock: ManualClock
) -> None:
    await push_queue.enqueue([make_job()])
    [stale] = await push_queue.claim("slow", 10, 0)
    await expire_claims(manual_clock)
    [current] = await push_queue.claim("b", 10, 0)

    assert await push_queue.retry(stale, 0.0) is False
    assert await push_queue.dead_letter(stale, "stale") is False
    assert await push_queue.dead_letters(10) == []
    assert await push_queue.claim("c", 10, 0) == []
    assert await push_queue.ack(current) is True


async def test_dead_letter_keeps_the_job_with_its_reason(
    push_queue: PushQueue, manual_clock: ManualClock
) -> None:
    await push_queue.enqueue([make_job("1:1"), make_job("1:2")])
    first, second = await push_queue.claim("a", 10, 0)

    assert await push_queue.dead_letter(first, "permanent failure: FCM 400") is True
    manual_clock.advance(1)
    assert await push_queue.dead_letter(second, "gave up after 8 attempts") is True

    newest, oldest = await push_queue.dead_letters(10)
    assert (newest.job, newest.reason, newest.dead_at_ms) == (
        second.job,
        "gave up after 8 attempts",
        START_MS + 1000,
    )
    assert (oldest.job, oldest.reason) == (first.job, "permanent failure: FCM 400")
    assert len(await push_queue.dead_letters(1)) == 1
    await expire_claims(manual_clock)
    assert await push_queue.claim("b", 10, 0) == []
    assert await push_queue.enqueue([make_job("1:1")]) == 0


async def test_blocking_claim_returns_a_job_enqueued_while_waiting(
    push_queue: PushQueue,
) -> None:
    waiting = asyncio.create_task(push_queue.claim("a", 10, 5000))
    await asyncio.sleep(0.1)
    assert not waiting.done()

    await push_queue.enqueue([make_job()])
    claimed = await asyncio.wait_for(waiting, 3)
    assert [c.job.job_id for c in claimed] == ["1001:99"]


async def test_blocking_claim_gives_up_after_block_ms(push_queue: PushQueue) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await push_queue.claim("a", 10, 200) == []
    assert 0.15 <= loop.time() - started < 2


async def test_empty_enqueue_and_empty_queue(push_queue: PushQueue) -> None:
    assert await push_queue.enqueue([]) == 0
    assert await push_queue.claim("a", 10, 0) == []
    assert await push_queue.dead_letters(10) == []


async def test_stats_count_the_backlog_its_age_and_the_dead_letters(
    push_queue: PushQueue, manual_clock: ManualClock
) -> None:
    empty = await push_queue.stats()
    assert (empty.depth, empty.oldest_due_age_ms, empty.dead_letters) == (0, 0, 0)
    await push_queue.enqueue([make_job("1:1"), make_job("1:2"), make_job("1:3")])
    manual_clock.advance(5)
    stats = await push_queue.stats()
    assert (stats.depth, stats.oldest_due_age_ms, stats.dead_letters) == (3, 5000, 0)

    first, second, third = await push_queue.claim("a", 3, 0)
    await push_queue.ack(first)
    await push_queue.retry(second, delay_s=60)  # scheduled: still in the backlog, not due
    await push_queue.dead_letter(third, "gave up")
    stats = await push_queue.stats()
    assert (stats.depth, stats.oldest_due_age_ms, stats.dead_letters) == (1, 0, 1)

    manual_clock.advance(61)  # the retry is due 1 s ago, whether promoted yet or not
    stats = await push_queue.stats()
    assert (stats.depth, stats.oldest_due_age_ms, stats.dead_letters) == (1, 1000, 1)
    [retried] = await push_queue.claim("a", 1, 0)
    assert retried.job.job_id == "1:2"
