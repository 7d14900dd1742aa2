"""The production append as a sans-I/O state machine: every decision, none of the awaiting.

``HybridInboxStore`` (``store_hybrid``) appends a message in three steps: **reserve** positions
in Redis (claiming the idempotency key in the same call), **write** the rows to Cassandra,
**commit** in Redis. Readers see only committed positions; a reservation that never commits
is **fenced** (its rows deleted with a later write timestamp, then its marks dropped). This
module decides, after each step's outcome, what happens next; the store performs each
``Action`` and reports back. No clock, socket or task here: times come in as arguments, so
every path is a plain unit test.

One append, from ``AppendProtocol.start`` to a ``Finish``::

    RESERVING --reserved--> [LOOKING_UP --looked_up--> [SETTLING --settled-->]] WRITING
        --written--> COMMITTING --committed--> DONE

``LOOKING_UP`` only with an idempotency key: the durable receipt is read (concurrently with
the reserve) because Redis may have forgotten an earlier attempt (its data was lost, or the
receipt expired). ``SETTLING`` only when one was found: it answers the retry only if its
attempt committed. Every failure ``Finish``-es with ``Unavailable`` (503: nothing visible, a
retry is safe) after the cleanup the ``Finish`` names. The four ways out:

- a replay (``Finish.result`` is a replayed ``Appended``): from Redis' receipt, or from a
  settled durable one (dropping our reservation first);
- success: the commit cleared every mark in time, or Redis lost its data meanwhile but our
  rows were written before the deadline (their positions are then below the new head);
- a failure before anything was written: drop the reservation (``abort``), release the claim;
- a failure after the write began: ``fence`` the rows, then drop the marks, release the claim.

Another attempt of the same key holding its claim (``Busy``) is polled for ``BUSY_WAIT_S``,
then answered 503 with ``Retry-After`` = when that claim expires. A claim lives
``Timing.claim_ttl_ms``: its reservation's deadline plus a margin. Past it the attempt cannot
commit (the deadline passed, and COMMIT also refuses once the key holds another attempt's
claim), so the next reserve takes the key over and goes on as the first attempt: the durable
receipt it reads catches an earlier attempt that did write (settled as above), and any rows
that attempt still writes late lose to the fence by their write timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from inbox.core.errors import Unavailable
from inbox.core.models import AppendBatch, Appended, SendReceipt
from inbox.messages.durable_cassandra import DurableAppend
from inbox.messages.log_redis import Busy, Claim, NeedsSeed, Recovering, Replay, Reservation

BUSY_POLL_S = 0.02
"""How often a retry polls while another attempt of the same key is in flight."""
BUSY_WAIT_S = 1.0
"""How long a retry polls a key that another attempt holds before it answers 503 with
``Retry-After`` (when that claim expires): a live attempt usually ends well within it; one
whose node died never ends, and its claim is taken over once it expired."""
RECOVERY_POLL_S = 0.2
"""Longest wait between reserves while an inbox recovers from a Redis loss."""


@dataclass(frozen=True, slots=True)
class Timing:
    """The append's time limits, in milliseconds."""

    pending_ttl_ms: int = 5000
    """How long a reservation may take to commit before readers may fence it."""
    receipt_ttl_ms: int = 3_600_000
    """How long Redis keeps a committed attempt's receipt (Cassandra keeps it for good)."""
    claim_margin_ms: int = 1000
    """How long a claim outlives its reservation's deadline (a Redis clock stepping back
    by less cannot let the claim's attempt commit after another took the key over)."""

    @property
    def claim_ttl_ms(self) -> int:
        """How long an idempotency claim lasts: past it, its attempt can no longer commit
        (its deadline passed), so another attempt of the same key may take the key over."""
        return self.pending_ttl_ms + self.claim_margin_ms

    @property
    def reserve_give_up_s(self) -> float:
        """How long reserves are retried while sequencers are seeded or recovering."""
        return 2 * self.pending_ttl_ms / 1000 + 1


class Phase(Enum):
    """Where an append is; each event is accepted in one phase only."""

    RESERVING = "reserving"
    LOOKING_UP = "looking_up"
    SETTLING = "settling"
    WRITING = "writing"
    COMMITTING = "committing"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Reserve:
    """Reserve the message (and claim its key); look the durable receipt up if ``lookup``."""

    lookup: bool


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait, then reserve again."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Seed:
    """Create the missing sequencers of these inboxes, then reserve again."""

    user_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Lookup:
    """Await the durable receipt lookup (``fresh``: issue a new one; the one started with
    the first reserve predates a claim that another attempt held)."""

    fresh: bool


@dataclass(frozen=True, slots=True)
class Settle:
    """Find out whether the attempt that stored ``receipt`` committed (see ``settled``)."""

    receipt: SendReceipt


@dataclass(frozen=True, slots=True)
class Write:
    """Write the rows to Cassandra with write timestamp ``ts_us``."""

    append: DurableAppend
    receipt: SendReceipt | None
    ts_us: int


@dataclass(frozen=True, slots=True)
class Commit:
    """Clear the reservation's marks; store ``receipt`` under the claimed key on success."""

    reservation: Reservation
    receipt: SendReceipt | None


@dataclass(frozen=True, slots=True)
class Finish:
    """The end: clean up as named, then return ``result`` or raise it."""

    result: Appended | Unavailable
    abort: Reservation | None = None
    """Drop these marks (nothing was written to Cassandra)."""
    fence: tuple[DurableAppend, Reservation] | None = None
    """Delete these rows (timestamp after the reservation's deadline), then drop the marks."""
    release: Claim | None = None
    """Drop our idempotency claim (compare-and-delete)."""
    cache: SendReceipt | None = None
    """Store the receipt under the key again (Redis lost the claim, the commit stood)."""


Action = Reserve | Sleep | Lookup | Settle | Write | Commit | Finish


class AppendProtocol:
    """The decisions of one append (see the module docstring); methods are the events."""

    def __init__(self, batch: AppendBatch, claim: Claim | None, timing: Timing,
                 started_s: float) -> None:
        """``claim`` is the key and token to claim (None without an idempotency key);
        ``started_s`` is when the append began, on the caller's monotonic clock."""
        self.batch = batch
        self.claim = claim
        self.timing = timing
        self.phase = Phase.RESERVING
        self._started_s = started_s
        self._sent_s = started_s
        self._saw_busy = False
        self._written_s = started_s
        self.reservation: Reservation | None = None
        self._append: DurableAppend | None = None
        self._receipt: SendReceipt | None = None

    def _expect(self, *phases: Phase) -> None:
        if self.phase not in phases:
            raise RuntimeError(f"append event in phase {self.phase.value}")

    def _finish(self, result: Appended | Unavailable, **cleanup: object) -> Finish:
        self.phase = Phase.DONE
        return Finish(result, **cleanup)  # type: ignore[arg-type]

    def start(self) -> Reserve:
        """The first step: reserve, and read the durable receipt meanwhile when keyed."""
        self._expect(Phase.RESERVING)
        return Reserve(lookup=self.claim is not None)

    def sent(self, now_s: float) -> None:
        """A reserve is being sent now: its deadline is at most a pending TTL after this."""
        self._sent_s = now_s

    def reserved(self, outcome: Reservation | Replay | Busy, now_s: float) -> Action:
        """The reserve's answer for this message."""
        self._expect(Phase.RESERVING)
        if isinstance(outcome, Replay):
            return self._finish(Appended(receipt=outcome.receipt, replayed=True))
        if isinstance(outcome, Busy):
            if now_s - self._started_s >= BUSY_WAIT_S:
                return self._finish(Unavailable(
                    "the same client_msg_id is being sent; retry",
                    retry_after_s=outcome.wait_ms / 1000))
            self._saw_busy = True
            return Sleep(BUSY_POLL_S)
        self.reservation = outcome
        batch = self.batch
        self._append = DurableAppend(batch.draft, outcome.positions, batch.message,
                                     batch.idempotency_key)
        self._receipt = _receipt(batch, outcome)
        if self.claim is not None:
            self.phase = Phase.LOOKING_UP
            return Lookup(fresh=self._saw_busy)
        return self._write()

    def looked_up(self, earlier: SendReceipt | None, now_s: float) -> Action:
        """The durable receipt of the key, if Cassandra holds one."""
        self._expect(Phase.LOOKING_UP)
        if earlier is not None:
            if self.batch.receipt_for is None:  # an entry of the server's own: it landed
                return self._finish(Appended(receipt=earlier, replayed=True),
                                    abort=self.reservation, release=self.claim)
            self.phase = Phase.SETTLING
            return Settle(earlier)
        return self._write_in_time(now_s)

    def settled(self, committed: SendReceipt | None, now_s: float) -> Action:
        """``committed``: the earlier receipt if its attempt committed; None if that attempt
        was fenced (the store fenced an expired one), so this one goes on as the first."""
        self._expect(Phase.SETTLING)
        if committed is not None:
            return self._finish(Appended(receipt=committed, replayed=True),
                                abort=self.reservation, release=self.claim)
        return self._write_in_time(now_s)

    def _write_in_time(self, now_s: float) -> Action:
        # Past the reservation's deadline the commit must fail (and the claim may soon go to
        # another attempt): writing then would only leave rows to fence.
        if now_s - self._sent_s > self.timing.pending_ttl_ms / 1000:
            return self._finish(Unavailable("send took too long to start; retry"),
                                abort=self.reservation, release=self.claim)
        return self._write()

    def _write(self) -> Write:
        assert self._append is not None and self.reservation is not None  # noqa: S101
        self.phase = Phase.WRITING
        return Write(self._append, self._receipt, self.reservation.deadline_ms * 1000)

    def written(self, now_s: float) -> Commit:
        """Every row is in Cassandra (at ``now_s``)."""
        self._expect(Phase.WRITING)
        assert self.reservation is not None  # noqa: S101
        self.phase = Phase.COMMITTING
        self._written_s = now_s
        return Commit(self.reservation, self._receipt)

    def committed(self, outcome: str) -> Finish:
        """The commit's answer: ``ok``, ``lost`` (Redis lost every inbox meanwhile) or
        ``expired`` (a mark expired or was fenced)."""
        self._expect(Phase.COMMITTING)
        appended = self._appended()
        if outcome == "ok":
            return self._finish(appended)
        deadline_s = self._sent_s + self.timing.pending_ttl_ms / 1000
        if outcome == "lost" and self._written_s < deadline_s:
            # The rows landed before any reader may fence them: they stand, below the head
            # of the new era. The receipt goes back under the key for retries.
            return self._finish(appended, cache=self._receipt)
        return self._fail_after_write(Unavailable(f"send did not commit in time ({outcome}); "
                                                  "retry"))

    def failed(self, error: Unavailable) -> Finish:
        """The current step's store could not answer: clean up and give ``error``."""
        if self.phase in (Phase.WRITING, Phase.COMMITTING):
            return self._fail_after_write(error)
        if self.phase is Phase.DONE:
            raise RuntimeError("append event after it finished")
        # A reserve whose answer was lost may have claimed the key: releasing is a
        # compare-and-delete of our own token, harmless when it did not.
        return self._finish(error, abort=self.reservation, release=self.claim)

    def _fail_after_write(self, error: Unavailable) -> Finish:
        assert self._append is not None and self.reservation is not None  # noqa: S101
        return self._finish(error, fence=(self._append, self.reservation), release=self.claim)

    def _appended(self) -> Appended:
        assert self.reservation is not None  # noqa: S101
        return Appended(receipt=self._receipt, positions=dict(self.reservation.positions),
                        previous=self.reservation.previous)


def unreserved(outcome: NeedsSeed | Recovering, started_s: float, now_s: float,
               timing: Timing) -> Seed | Sleep | Unavailable:
    """What to do when a reserve reserved nothing: seed the missing sequencers, or wait out
    a recovery window, until ``Timing.reserve_give_up_s`` after the append started."""
    if now_s - started_s > timing.reserve_give_up_s:
        return Unavailable("inbox sequencer is recovering; retry")
    if isinstance(outcome, NeedsSeed):
        return Seed(tuple(outcome.user_ids))
    return Sleep(min(outcome.wait_ms / 1000, RECOVERY_POLL_S))


EarlierAttempt = Literal["ended", "running", "abandoned"]


def earlier_attempt(pending_deadline_ms: int | None, now_ms: int) -> EarlierAttempt:
    """What became of an attempt whose durable receipt a retry found, from the pending mark
    at the receipt's position in the sender's inbox: ``ended`` without a mark (it committed,
    or a reader fenced it: reading the receipt again tells which, since a fence deletes the
    receipt before the mark), ``running`` while the mark may still commit (the retry is a
    503), ``abandoned`` once it expired (fence it; the retry goes on as the first attempt).

    An attempt writes its receipt before it commits, so a receipt alone proves nothing:
    answering from one that never commits would acknowledge a message that readers are
    about to fence away."""
    if pending_deadline_ms is None:
        return "ended"
    return "running" if pending_deadline_ms >= now_ms else "abandoned"


def _receipt(batch: AppendBatch, reservation: Reservation) -> SendReceipt | None:
    """The receipt the append answers with: the sender's position, when it has a sender."""
    if batch.receipt_for is None:
        return None
    draft = batch.draft
    return SendReceipt(draft.msg_id, reservation.positions[batch.receipt_for],
                       draft.conversation_id, draft.created_at_ms)
