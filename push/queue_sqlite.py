"""The embedded push queue: one SQLite file, for a single messenger process (or a few on the
same machine). Jobs survive a restart of the process.

SQS-style visibility: each job row has ``visible_at_ms``. A new job is visible at once, a
retry when its delay has passed; claiming a job pushes its ``visible_at_ms`` one visibility
timeout ahead and gives the claim a fresh token, so a claim never settled makes the job
visible again. ``retry`` and ``dead_letter`` only act while the row still carries the
claim's token. Job ids seen within the dedup window are kept in ``push_seen``.

sqlite3 is blocking: statements run on the database thread of ``inbox.storage.sqlite_db``, never on
the event loop. The file is opened on first use, with full fsync (a job is a promise to push).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from idgen.clock import SYSTEM_CLOCK, Clock
from inbox.storage.sqlite_db import SqliteDatabase
from push.job import JobDecodeError, PushJob, decode_job, encode_job
from push.queue import (
    DEFAULT_DEDUP_WINDOW_MS,
    DEFAULT_VISIBILITY_TIMEOUT_MS,
    Claimed,
    DeadLetter,
    QueueStats,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS push_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    job TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    claim_token TEXT,
    claimed_by TEXT
);
CREATE INDEX IF NOT EXISTS push_jobs_visible ON push_jobs (visible_at_ms, seq);
CREATE TABLE IF NOT EXISTS push_seen (
    job_id TEXT PRIMARY KEY,
    first_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS push_seen_first ON push_seen (first_ms);
CREATE TABLE IF NOT EXISTS push_dead (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    job TEXT NOT NULL,
    reason TEXT NOT NULL,
    dead_at_ms INTEGER NOT NULL
);
"""


class SqliteQueue:
    """:class:`push.queue.PushQueue` in the SQLite file at ``path`` (created if missing).

    ``clock`` gives due and visibility times. ``poll_interval_s`` is how often a blocking
    ``claim`` looks again for retries that became due (jobs enqueued through this object
    wake it at once). At most ``dead_max`` dead letters are kept, the oldest dropped first.
    """

    def __init__(
        self,
        path: str | Path,
        clock: Clock = SYSTEM_CLOCK,
        *,
        visibility_timeout_ms: int = DEFAULT_VISIBILITY_TIMEOUT_MS,
        dedup_window_ms: int = DEFAULT_DEDUP_WINDOW_MS,
        dead_max: int = 10_000,
        poll_interval_s: float = 0.2,
    ) -> None:
        if visibility_timeout_ms <= 0 or dedup_window_ms <= 0 or dead_max <= 0:
            raise ValueError("visibility_timeout_ms, dedup_window_ms and dead_max must be > 0")
        self._path = Path(path)
        self._clock = clock
        self._visibility_ms = visibility_timeout_ms
        self._dedup_ms = dedup_window_ms
        self._dead_max = dead_max
        self._poll_s = poll_interval_s
        self._db = SqliteDatabase(self._path, schema=_SCHEMA, durable_fsync=True,
                                  busy_timeout_s=10.0)
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._wakeup = asyncio.Event()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction (claims never race)."""
        if self._closed:
            raise RuntimeError("push queue is closed")
        if not self._opened:
            async with self._open_lock:
                if not self._opened:
                    await self._db.open()
                    self._opened = True
        return await self._db.transaction(fn)

    async def enqueue(self, jobs: Sequence[PushJob]) -> int:
        """Add the jobs whose ids were not seen within the dedup window; return how many."""
        now = self._clock.now_ms()
        rows = [(job.job_id, encode_job(job)) for job in jobs]

        def op(db: sqlite3.Connection) -> int:
            db.execute("DELETE FROM push_seen WHERE first_ms < ?", (now - self._dedup_ms,))
            added = 0
            for job_id, text in rows:
                seen = db.execute(
                    "INSERT OR IGNORE INTO push_seen (job_id, first_ms) VALUES (?, ?)",
                    (job_id, now),
                )
                if seen.rowcount == 1:
                    added += db.execute(
                        "INSERT OR IGNORE INTO push_jobs (job_id, job, visible_at_ms) "
                        "VALUES (?, ?, ?)",
                        (job_id, text, now),
                    ).rowcount
            return added

        added = await self._run(op)
        if added:
            self._wakeup.set()
        return added

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        """Take up to ``count`` visible jobs; poll until ``block_ms`` has passed if none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(block_ms, 0) / 1000
        while True:
            self._wakeup.clear()
            claimed = await self._run(lambda db: self._claim(db, consumer, count))
            remaining = deadline - loop.time()
            if claimed or remaining <= 0:
                return claimed
            try:
                async with asyncio.timeout(min(remaining, self._poll_s)):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _claim(self, db: sqlite3.Connection, consumer: str, count: int) -> list[Claimed]:
        now = self._clock.now_ms()
        rows = db.execute(
            "SELECT seq, job FROM push_jobs WHERE visible_at_ms <= ? "
            "ORDER BY visible_at_ms, seq LIMIT ?",
            (now, count),
        ).fetchall()
        claimed: list[Claimed] = []
        for seq, text in rows:
            try:
                job = decode_job(text)
            except JobDecodeError as exc:
                self._bury(db, seq, None, text, f"undecodable job: {exc}", now)
                continue
            token = uuid.uuid4().hex
            db.execute(
                "UPDATE push_jobs SET visible_at_ms = ?, claim_token = ?, claimed_by = ? "
                "WHERE seq = ?",
                (now + self._visibility_ms, token, consumer, seq),
            )
            claimed.append(Claimed(job=job, receipt=f"{seq}:{token}", consumer=consumer))
        return claimed

    def _bury(
        self,
        db: sqlite3.Connection,
        seq: int,
        job_id: str | None,
        text: str,
        reason: str,
        now: int,
    ) -> None:
        db.execute("DELETE FROM push_jobs WHERE seq = ?", (seq,))
        db.execute(
            "INSERT INTO push_dead (job_id, job, reason, dead_at_ms) VALUES (?, ?, ?, ?)",
            (job_id, text, reason, now),
        )
        db.execute(
            "DELETE FROM push_dead WHERE seq <= (SELECT MAX(seq) FROM push_dead) - ?",
            (self._dead_max,),
        )

    @staticmethod
    def _receipt(claimed: Claimed) -> tuple[int, str]:
        seq, _, token = claimed.receipt.partition(":")
        return int(seq), token

    async def ack(self, claimed: Claimed) -> bool:
        """Remove the job for good (whoever holds it now)."""
        seq, _ = self._receipt(claimed)
        return await self._run(
            lambda db: db.execute("DELETE FROM push_jobs WHERE seq = ?", (seq,)).rowcount == 1
        )

    async def retry(self, claimed: Claimed, delay_s: float) -> bool:
        """Replace the claimed job by its next attempt, visible ``delay_s`` from now."""
        seq, token = self._receipt(claimed)
        text = encode_job(claimed.job.next_attempt())
        due = self._clock.now_ms() + max(round(delay_s * 1000), 0)
        return await self._run(
            lambda db: (
                db.execute(
                    "UPDATE push_jobs SET job = ?, visible_at_ms = ?, claim_token = NULL, "
                    "claimed_by = NULL WHERE seq = ? AND claim_token = ?",
                    (text, due, seq, token),
                ).rowcount
                == 1
            )
        )

    async def dead_letter(self, claimed: Claimed, reason: str) -> bool:
        """Move the claimed job to the dead letters with ``reason``."""
        seq, token = self._receipt(claimed)
        now = self._clock.now_ms()
        text = encode_job(claimed.job)

        def op(db: sqlite3.Connection) -> bool:
            held = db.execute(
                "SELECT 1 FROM push_jobs WHERE seq = ? AND claim_token = ?", (seq, token)
            ).fetchone()
            if held is None:
                return False
            self._bury(db, seq, claimed.job.job_id, text, reason, now)
            return True

        return await self._run(op)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters, newest first."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT job, reason, dead_at_ms FROM push_dead ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [_dead_letter(text, reason, at) for text, reason, at in rows]

    async def stats(self) -> QueueStats:
        """Depth, age of the oldest unclaimed due job and dead-letter count, in one read."""
        now = self._clock.now_ms()

        def op(db: sqlite3.Connection) -> QueueStats:
            depth, oldest = db.execute(
                "SELECT COUNT(*), MIN(CASE WHEN visible_at_ms <= ? THEN visible_at_ms END) "
                "FROM push_jobs", (now,)).fetchone()
            dead = db.execute("SELECT COUNT(*) FROM push_dead").fetchone()[0]
            return QueueStats(int(depth), 0 if oldest is None else now - int(oldest), int(dead))

        return await self._run(op)

    async def pending(self) -> int:
        """How many jobs are waiting, scheduled or claimed (for metrics and tests)."""
        return await self._run(
            lambda db: int(db.execute("SELECT COUNT(*) FROM push_jobs").fetchone()[0])
        )

    async def close(self) -> None:
        """Close the database and its thread; claimed jobs become visible again later."""
        self._closed = True
        await self._db.close()


def _dead_letter(text: str, reason: str, dead_at_ms: int) -> DeadLetter:
    try:
        job: PushJob | None = decode_job(text)
    except JobDecodeError:
        job = None
    return DeadLetter(job=job, raw=text, reason=reason, dead_at_ms=dead_at_ms)
