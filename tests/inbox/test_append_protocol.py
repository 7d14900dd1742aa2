"""Every decision of the production append, with no I/O: events in, actions out."""

from __future__ import annotations

import pytest

from inbox.core.errors import Unavailable
from inbox.core.models import AppendBatch, Appended, EntryDraft, EntryKind, Message, SendReceipt
from inbox.messages.append_protocol import (
    BUSY_POLL_S,
    BUSY_WAIT_S,
    RECOVERY_POLL_S,
    AppendProtocol,
    Commit,
    Finish,
    Lookup,
    Phase,
    Reserve,
    Seed,
    Settle,
    Sleep,
    Timing,
    Write,
    earlier_attempt,
    unreserved,
)
from inbox.messages.log_redis import Busy, Claim, NeedsSeed, Recovering, Replay, Reservation

TIMING = Timing(pending_ttl_ms=5000)
SENDER, PEER = 10, 20
CLAIM = Claim("idem:{u:10}:k", "p:token")
DRAFT = EntryDraft(EntryKind.MESSAGE, 1000, "d:10:20", SENDER, 7, 123, body="hi")
RESERVATION = Reservation(now_ms=50, deadline_ms=5050, previous={SENDER: 3, PEER: 4},
                          positions={SENDER: 1000, PEER: 1001}, eras={SENDER: "a", PEER: "b"})
RECEIPT = SendReceipt(1000, 1000, "d:10:20", 123)
EARLIER = SendReceipt(900, 905, "d:10:20", 100)


def send(key: bool = True, receipt_for: int | None = SENDER) -> AppendProtocol:
    batch = AppendBatch(DRAFT, (SENDER, PEER), Message(1000, "d:10:20", SENDER, 7, "hi", 123),
                        idempotency_key=(SENDER, "k") if key else None, receipt_for=receipt_for)
    return AppendProtocol(batch, CLAIM if key else None, TIMING, started_s=0.0)


def reserved(p: AppendProtocol, now_s: float = 0.01) -> object:
    assert p.start() == Reserve(lookup=p.claim is not None)
    p.sent(0.0)
    return p.reserved(RESERVATION, now_s)


def appended(action: object) -> Appended:
    """The append a ``Finish`` answers with (failing the test if it is anything else)."""
    assert isinstance(action, Finish) and isinstance(action.result, Appended), action
    return action.result


def test_the_happy_path_reserves_writes_and_commits() -> None:
    p = send(key=False)
    write = reserved(p)
    assert isinstance(write, Write)
    assert (write.append.positions, write.receipt, write.ts_us) == (
        RESERVATION.positions, RECEIPT, 5050 * 1000)  # written at the deadline: fenceable
    assert p.written(1.0) == Commit(RESERVATION, RECEIPT)
    finish = p.committed("ok")
    assert appended(finish).receipt == RECEIPT and not appended(finish).replayed
    assert (finish.abort, finish.fence, finish.release, finish.cache) == (None,) * 4
    assert p.phase is Phase.DONE


def test_a_keyed_append_reads_the_durable_receipt_before_writing() -> None:
    p = send()
    assert reserved(p) == Lookup(fresh=False)
    assert isinstance(p.looked_up(None, 0.02), Write)


def test_a_receipt_in_redis_is_a_replay_that_reserved_nothing() -> None:
    p = send()
    p.start()
    finish = p.reserved(Replay(EARLIER), 0.01)
    assert appended(finish).replayed and appended(finish).receipt == EARLIER
    # nothing held, nothing to drop
    assert isinstance(finish, Finish) and (finish.abort, finish.release) == (None, None)


def test_another_attempt_in_flight_is_polled_briefly_then_answered_with_retry_after() -> None:
    """A live duplicate ends within the poll; a dead one's claim outlives it: the retry is
    told when that claim expires instead of waiting for it."""
    p = send()
    p.start()
    assert p.reserved(Busy(4200), 0.01) == Sleep(BUSY_POLL_S)
    assert p.reserved(Busy(3300), BUSY_WAIT_S - 0.01) == Sleep(BUSY_POLL_S)
    late = p.reserved(Busy(3200), BUSY_WAIT_S)
    assert isinstance(late, Finish) and isinstance(late.result, Unavailable)
    assert late.result.retry_after_s == 3.2
    assert late.result.http_headers == {"Retry-After": "4"}
    assert (late.abort, late.fence, late.release) == (None, None, None)  # it held nothing
    assert BUSY_WAIT_S <= 1.0


def test_a_claim_lives_until_its_reservation_can_no_longer_commit_plus_a_margin() -> None:
    assert TIMING.claim_ttl_ms == TIMING.pending_ttl_ms + TIMING.claim_margin_ms
    assert 0 < TIMING.claim_margin_ms < TIMING.pending_ttl_ms


def test_after_polling_the_durable_receipt_is_read_afresh() -> None:
    p = send()
    p.start()
    p.reserved(Busy(100), 0.5)
    # The lookup started with the first reserve predates the other attempt's writes.
    assert p.reserved(RESERVATION, 0.6) == Lookup(fresh=True)


def test_a_durable_receipt_is_settled_before_it_answers() -> None:
    p = send()
    reserved(p)
    assert p.looked_up(EARLIER, 0.02) == Settle(EARLIER)
    finish = p.settled(EARLIER, 0.03)
    assert appended(finish).replayed and appended(finish).receipt == EARLIER
    # ours is dropped
    assert isinstance(finish, Finish) and (finish.abort, finish.release) == (RESERVATION, CLAIM)


def test_an_abandoned_earlier_attempt_lets_this_one_go_on_as_the_first() -> None:
    p = send()
    reserved(p)
    p.looked_up(EARLIER, 0.02)
    assert isinstance(p.settled(None, 0.03), Write)


def test_a_server_entry_with_a_durable_receipt_landed_already() -> None:
    p = send(receipt_for=None)
    reserved(p)
    finish = p.looked_up(EARLIER, 0.02)
    assert appended(finish).replayed
    assert isinstance(finish, Finish) and finish.abort == RESERVATION


def test_an_append_that_starts_writing_too_late_gives_up() -> None:
    """Past its reservation's deadline (a pending TTL after the reserve was sent) a commit
    must fail and the claim may go to another attempt: nothing is written."""
    p = send()
    reserved(p)
    finish = p.looked_up(None, TIMING.pending_ttl_ms / 1000 + 0.1)
    assert isinstance(finish, Finish) and isinstance(finish.result, Unavailable)
    assert (finish.abort, finish.release, finish.fence) == (RESERVATION, CLAIM, None)


def test_the_write_deadline_counts_from_the_reserve_that_claimed_the_key() -> None:
    """After polling a busy key, the reserve that took it over sets the deadline."""
    p = send()
    p.start()
    p.sent(0.0)
    p.reserved(Busy(800), 0.2)
    p.sent(0.9)
    assert p.reserved(RESERVATION, 0.91) == Lookup(fresh=True)
    assert isinstance(p.looked_up(None, 0.9 + TIMING.pending_ttl_ms / 1000 - 0.1), Write)
    late = send()
    late.start()
    late.sent(0.0)
    late.reserved(Busy(800), 0.2)
    late.sent(0.9)
    late.reserved(RESERVATION, 0.91)
    finish = late.looked_up(None, 0.9 + TIMING.pending_ttl_ms / 1000 + 0.1)
    assert isinstance(finish, Finish) and isinstance(finish.result, Unavailable)


def test_a_failed_write_is_fenced_and_its_claim_released() -> None:
    p = send()
    reserved(p)
    write = p.looked_up(None, 0.02)
    assert isinstance(write, Write)
    finish = p.failed(Unavailable("Cassandra is unavailable; retry later"))
    assert finish.fence == (write.append, RESERVATION) and finish.release == CLAIM
    assert finish.abort is None


def test_a_failed_lookup_drops_the_reservation_without_fencing() -> None:
    p = send()
    reserved(p)
    finish = p.failed(Unavailable("Cassandra is unavailable; retry later"))
    assert (finish.abort, finish.fence, finish.release) == (RESERVATION, None, CLAIM)


def test_a_commit_too_late_is_fenced() -> None:
    p = send(key=False)
    reserved(p)
    p.written(1.0)
    finish = p.committed("expired")
    assert isinstance(finish.result, Unavailable) and finish.fence is not None


def test_redis_lost_during_the_append_keeps_rows_written_in_time() -> None:
    p = send()
    reserved(p)
    p.looked_up(None, 0.02)
    p.written(1.0)  # within the pending TTL of the reserve
    finish = p.committed("lost")
    assert appended(finish).receipt == RECEIPT and finish.cache == RECEIPT
    late = send()
    reserved(late)
    late.looked_up(None, 0.02)
    late.written(TIMING.pending_ttl_ms / 1000 + 0.1)  # a reader may have fenced it already
    assert isinstance(late.committed("lost").result, Unavailable)


def test_events_out_of_phase_are_refused() -> None:
    p = send(key=False)
    with pytest.raises(RuntimeError):
        p.written(0.0)
    reserved(p)
    with pytest.raises(RuntimeError):
        p.looked_up(None, 0.0)
    p.written(0.1)
    p.committed("ok")
    with pytest.raises(RuntimeError):
        p.failed(Unavailable("x"))


def test_a_reserve_that_reserved_nothing_seeds_or_waits_then_gives_up() -> None:
    assert unreserved(NeedsSeed([5, 6]), 0.0, 0.1, TIMING) == Seed((5, 6))
    assert unreserved(Recovering(50), 0.0, 0.1, TIMING) == Sleep(0.05)
    assert unreserved(Recovering(9000), 0.0, 0.1, TIMING) == Sleep(RECOVERY_POLL_S)
    late = unreserved(Recovering(50), 0.0, TIMING.reserve_give_up_s + 0.1, TIMING)
    assert isinstance(late, Unavailable)


def test_an_earlier_attempt_is_judged_by_its_pending_mark() -> None:
    assert earlier_attempt(None, 1000) == "ended"
    assert earlier_attempt(1000, 1000) == "running"
    assert earlier_attempt(999, 1000) == "abandoned"
