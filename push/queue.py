"""The durable push job queue port: ``queue_sqlite`` (embedded) and ``queue_redis``.

Workers claim jobs, attempt them, and settle each claim exactly one way: ``ack`` (delivered
or nothing more to do), ``retry`` (again later) or ``dead_letter`` (given up, kept for
inspection). A claim that is never settled (the worker died, was cancelled or hung) expires
after the queue's visibility timeout and the job is handed to the next ``claim``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from push.job import PushJob

DEFAULT_VISIBILITY_TIMEOUT_MS = 60_000
"""How long a claim lasts before another consumer may take the job. Must comfortably exceed
the longest send (a sender's timeout), or a slow send is delivered twice."""

DEFAULT_DEDUP_WINDOW_MS = 24 * 3600 * 1000
"""How long a job id is remembered after it was first enqueued (longer than any retry policy's
maximum age), so a re-enqueue of a finished job sends nothing."""


@dataclass(frozen=True)
class Claimed:
    """A job handed to one consumer. ``receipt`` identifies this claim to the backend (a
    stream entry id, a row id and claim token); only the queue that issued it reads it."""

    job: PushJob
    receipt: str
    consumer: str


@dataclass(frozen=True)
class DeadLetter:
    """A job that was given up: why, and when (Unix ms). ``raw`` is the job as stored;
    ``job`` is None when that could not be decoded (which is then the reason)."""

    job: PushJob | None
    raw: str
    reason: str
    dead_at_ms: int


@dataclass(frozen=True)
class QueueStats:
    """What operators watch: the backlog, how stale its head is, and what was given up."""

    depth: int
    """Jobs waiting, scheduled for a retry, or claimed and not settled."""
    oldest_due_age_ms: int
    """How long the job that has been due the longest has waited (0 when none is due)."""
    dead_letters: int
    """Jobs given up and kept in the dead letters."""


class PushQueue(Protocol):
    """A durable, at-least-once queue of push jobs shared by any number of workers.

    Contract:

    - **Dedup**: ``enqueue`` ignores a job whose ``job_id`` the queue already holds, pending,
      scheduled for retry, claimed or finished (acked or dead-lettered) within the dedup
      window: enqueueing the same fan-out twice makes one push sequence.
    - **Due order**: ``claim`` returns jobs whose time has come: new ones (oldest first),
      retries whose delay has passed, and jobs whose claim expired (claimed more than the
      visibility timeout ago and never settled). Never more than ``count``; it waits up to
      ``block_ms`` for one when none is due (0: do not wait). A job is held by at most one
      live claim at a time.
    - **At-least-once**: a job is handed out again until a claim of it is settled. A job that
      was acked is never handed out again. Jobs that cannot be decoded are moved to the dead
      letters by the queue itself, never returned.
    - **Settling**: ``retry`` atomically replaces the claimed job with the same job numbered
      ``attempt + 1``, due ``delay_s`` from now; ``dead_letter`` atomically moves it to the
      dead letters. Both return False and change nothing when the claim has expired and was
      taken by another consumer (the new holder settles it). ``ack`` always removes the job
      (a delivered push is done whoever holds it now) and returns whether it was still there.
    - Times (due, visibility) come from the queue's injected clock, except where a backend
      says otherwise. Backend errors propagate (the worker logs them and carries on).
    """

    async def enqueue(self, jobs: Sequence[PushJob]) -> int:
        """Add ``jobs`` (deduplicated on ``job_id``); return how many were new."""
        ...

    async def claim(self, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        """Take up to ``count`` due jobs for ``consumer``, waiting up to ``block_ms``."""
        ...

    async def ack(self, claimed: Claimed) -> bool:
        """Finish the job for good; True if it was still in the queue."""
        ...

    async def retry(self, claimed: Claimed, delay_s: float) -> bool:
        """Re-schedule the job as its next attempt after ``delay_s``; False if the claim
        was lost."""
        ...

    async def dead_letter(self, claimed: Claimed, reason: str) -> bool:
        """Give the job up, keeping it with ``reason``; False if the claim was lost."""
        ...

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The most recent dead letters, newest first, at most ``limit``."""
        ...

    async def stats(self) -> QueueStats:
        """Depth, age of the oldest due job (by the queue's clock) and dead-letter count."""
        ...

    async def close(self) -> None:
        """Release what the queue holds (files, threads); it is unusable afterwards. Jobs
        claimed and not settled are handed out again after the visibility timeout."""
        ...
