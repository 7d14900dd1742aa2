"""SqliteQueue specifics: durability across reopening the file, corrupt rows, lifecycle."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from push.queue_sqlite import SqliteQueue
from tests.push.support import VISIBILITY_MS, ManualClock, make_job


def _queue(path: Path, clock: ManualClock) -> SqliteQueue:
    return SqliteQueue(path, clock, visibility_timeout_ms=VISIBILITY_MS, poll_interval_s=0.02)


async def test_jobs_survive_reopening_the_file(tmp_path: Path, manual_clock: ManualClock) -> None:
    path = tmp_path / "data" / "push.sqlite3"
    first = _queue(path, manual_clock)
    await first.enqueue([make_job("1:1"), make_job("1:2"), make_job("1:3")])
    [acked] = await first.claim("a", 1, 0)
    await first.ack(acked)
    [retried] = await first.claim("a", 1, 0)
    await first.retry(retried, 5)
    [held] = await first.claim("a", 1, 0)  # claimed, then the process "dies"
    await first.close()

    second = _queue(path, manual_clock)
    try:
        assert await second.enqueue([make_job("1:1")]) == 0  # dedup survives too
        assert await second.claim("b", 10, 0) == []
        manual_clock.advance(VISIBILITY_MS / 1000 + 0.001)
        [again] = await second.claim("b", 10, 0)
        assert again.job == held.job
        assert await second.ack(again)
        manual_clock.advance(5)
        [later] = await second.claim("b", 10, 0)
        assert (later.job.job_id, later.job.attempt) == ("1:2", 2)
        assert await second.pending() == 1
    finally:
        await second.close()


async def test_undecodable_row_goes_to_dead_letters(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    path = tmp_path / "push.sqlite3"
    queue = _queue(path, manual_clock)
    await queue.enqueue([make_job("1:1")])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE push_jobs SET job = 'not json' WHERE job_id = '1:1'")
    db.close()
    await queue.enqueue([make_job("1:2")])
    try:
        claimed = await queue.claim("a", 10, 0)
        assert [c.job.job_id for c in claimed] == ["1:2"]
        [dead] = await queue.dead_letters(10)
        assert dead.job is None
        assert dead.raw == "not json"
        assert dead.reason.startswith("undecodable job")
    finally:
        await queue.close()


async def test_dead_letters_are_capped(tmp_path: Path, manual_clock: ManualClock) -> None:
    queue = SqliteQueue(tmp_path / "q.sqlite3", manual_clock, dead_max=3)
    await queue.enqueue([make_job(f"1:{n}") for n in range(5)])
    for claimed in await queue.claim("a", 10, 0):
        await queue.dead_letter(claimed, "x")
    try:
        assert [d.job.job_id for d in await queue.dead_letters(10) if d.job] == [
            "1:4",
            "1:3",
            "1:2",
        ]
    finally:
        await queue.close()


async def test_closed_queue_refuses_work_and_closes_twice(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    queue = _queue(tmp_path / "q.sqlite3", manual_clock)
    await queue.close()
    await queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        await queue.enqueue([make_job()])


def test_rejects_nonsense_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        SqliteQueue(tmp_path / "q.sqlite3", visibility_timeout_ms=0)
