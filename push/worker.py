"""The push worker: claims jobs from the durable queue, sends them, settles each claim.

For each claimed job, in order:

1. Older than the retry policy's ``max_age_s`` (measured from ``first_enqueued_ms``)?
   Dead-letter it: a provider that recovers after an outage is not flooded with stale pushes.
2. No sender for its provider? Dead-letter it, naming the provider.
3. One attempt through the provider's sender. A sender that raises (it should not: the port
   says errors are classified) counts as a connection error, i.e. ``RETRY``; so does a send
   that outlives ``send_timeout_s``.
4. :func:`push.retry.decide` says what follows: ``DONE`` -> ack; ``RETRY`` -> re-schedule
   after its delay (never sooner than the provider's Retry-After); ``DEAD_LETTER`` -> dead
   letters; ``DROP_TOKEN`` -> compare-and-clear the device's token (a token re-registered
   since the job was planned stays), then ack.

A job that fails in an unexpected way is logged and left unsettled: the queue hands it out
again after its visibility timeout. Nothing a single job does stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from typing import Protocol

from idgen.clock import Clock
from push.message import PushResult, PushStatus
from push.metrics import PushMetrics
from push.queue import Claimed, PushQueue
from push.retry import Action, RetryPolicy, decide
from push.sender import PushSender

log = logging.getLogger(__name__)


class TokenCleaner(Protocol):
    """What the worker needs from the account store (``inbox.accounts.port.AccountStore``)."""

    async def clear_push(self, device_id: int, token: str | None = None) -> bool:
        """Remove the device's push token if it is still ``token``; True if removed."""
        ...


class PushWorker:
    """One consumer of the push queue (run several, with distinct ``consumer`` names, for
    throughput or redundancy).

    ``senders`` maps a provider name to its sender; ``clock`` gives the time the job's age
    and retry decisions are measured with (the same clock as the queue's); ``rand`` is the
    jitter source for backoff. Each ``process_once`` claims up to ``batch_size`` jobs and
    sends them concurrently.
    """

    def __init__(
        self,
        queue: PushQueue,
        senders: Mapping[str, PushSender],
        accounts: TokenCleaner,
        policy: RetryPolicy,
        metrics: PushMetrics,
        clock: Clock,
        consumer: str,
        *,
        batch_size: int = 32,
        block_ms: int = 1000,
        send_timeout_s: float = 30.0,
        error_backoff_s: float = 1.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._queue = queue
        self._senders = dict(senders)
        self._accounts = accounts
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self.consumer = consumer
        self._batch_size = batch_size
        self._block_ms = block_ms
        self._send_timeout_s = send_timeout_s
        self._error_backoff_s = error_backoff_s
        self._rand = rand
        self._stop = asyncio.Event()

    async def process_once(self, block_ms: int = 0) -> int:
        """Claim one batch (waiting up to ``block_ms`` for it), handle every job of it, and
        return how many jobs were claimed. Queue errors while claiming propagate."""
        claimed = await self._queue.claim(self.consumer, self._batch_size, block_ms)
        if claimed:
            await asyncio.gather(*(self._handle(item) for item in claimed))
        return len(claimed)

    async def run(self) -> None:
        """Process batches until :meth:`stop`. A failing queue (Redis down, a locked file)
        is logged and tried again after ``error_backoff_s``."""
        self._stop.clear()
        while not self._stop.is_set():
            try:
                await self.process_once(self._block_ms)
            except Exception:
                log.exception("push worker %s: claiming jobs failed", self.consumer)
                try:
                    async with asyncio.timeout(self._error_backoff_s):
                        await self._stop.wait()
                except TimeoutError:
                    pass

    def stop(self) -> None:
        """Ask :meth:`run` to return once the batch in hand is settled."""
        self._stop.set()

    async def _handle(self, claimed: Claimed) -> None:
        try:
            await self._process(claimed)
        except Exception:
            log.exception(
                "push worker %s: job %s failed; it will be handed out again",
                self.consumer,
                claimed.job.job_id,
            )

    async def _process(self, claimed: Claimed) -> None:
        job = claimed.job
        age_s = (self._clock.now_ms() - job.first_enqueued_ms) / 1000
        if age_s > self._policy.max_age_s:
            await self._dead_letter(
                claimed,
                f"too old to send: {age_s:.0f} s after it was enqueued "
                f"(limit {self._policy.max_age_s:.0f} s)",
            )
            return
        sender = self._senders.get(job.provider)
        if sender is None:
            await self._dead_letter(claimed, f"no sender configured for provider {job.provider!r}")
            return
        result = await self._send(sender, claimed)
        if result.status is PushStatus.SENT:
            self._metrics.inc("sent", job.provider)
        else:
            self._metrics.inc("failed", job.provider)
        now_s = self._clock.now_ms() / 1000
        decision = decide(
            self._policy, job.attempt, result, job.first_enqueued_ms / 1000, now_s, self._rand
        )
        if decision.action is Action.DONE:
            await self._queue.ack(claimed)
        elif decision.action is Action.RETRY:
            if await self._queue.retry(claimed, decision.delay_s):
                self._metrics.inc("retried", job.provider)
                log.info(
                    "push %s attempt %d: %s; retrying in %.1f s",
                    job.job_id,
                    job.attempt,
                    decision.reason,
                    decision.delay_s,
                )
        elif decision.action is Action.DEAD_LETTER:
            await self._dead_letter(claimed, decision.reason)
        else:  # Action.DROP_TOKEN
            if await self._accounts.clear_push(job.device_id, job.token):
                self._metrics.inc("dropped_tokens", job.provider)
            log.info(
                "push %s: token of device %d rejected (%s); cleared if unchanged",
                job.job_id,
                job.device_id,
                decision.reason,
            )
            await self._queue.ack(claimed)

    async def _send(self, sender: PushSender, claimed: Claimed) -> PushResult:
        try:
            async with asyncio.timeout(self._send_timeout_s):
                return await sender.send(claimed.job.message)
        except TimeoutError:
            return PushResult(
                PushStatus.RETRY, detail=f"sender timed out after {self._send_timeout_s} s"
            )
        except Exception as exc:
            log.warning("push %s: %s sender raised %r", claimed.job.job_id, sender.provider, exc)
            return PushResult(PushStatus.RETRY, detail=f"sender raised {exc!r}")

    async def _dead_letter(self, claimed: Claimed, reason: str) -> None:
        if await self._queue.dead_letter(claimed, reason):
            self._metrics.inc("dead_lettered", claimed.job.provider)
            log.warning("push %s dead-lettered: %s", claimed.job.job_id, reason)
