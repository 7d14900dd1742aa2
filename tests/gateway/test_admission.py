"""The node's admission of new sockets: a token bucket whose refusals book each refused
client a turn, and a door that shuts for good when the node drains. No event loop."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.admission import MAX_RETRY_S, Admission
from inbox.accounts.throttle import Limit
from inbox.core.errors import NodeBusy
from tests.push.support import ManualClock


def refusal(admission: Admission) -> NodeBusy:
    with pytest.raises(NodeBusy) as caught:
        admission.admit()
    return caught.value


def test_the_bucket_admits_a_burst_then_refuses_with_503_overloaded_until_it_refills() -> None:
    clock = ManualClock()
    admission = Admission(clock, Limit(rate=10.0, burst=3))
    for _ in range(3):
        admission.admit()
    refused = refusal(admission)
    assert (refused.status, refused.code) == (503, "overloaded")
    assert refused.http_headers == {"Retry-After": "1"}
    clock.advance(0.1)  # one token back
    admission.admit()
    refusal(admission)


def test_refused_clients_are_booked_turns_at_the_rate_the_bucket_refills() -> None:
    """A storm of refusals is sent back spread out, ``rate`` clients per second, instead of
    all of them returning together after the smallest wait."""
    admission = Admission(ManualClock(), Limit(rate=10.0, burst=1))
    admission.admit()
    waits = [refusal(admission).retry_after_s for _ in range(50)]
    assert waits == pytest.approx([0.1 * (n + 1) for n in range(50)])
    per_second = Counter(refusal.retry_after for refusal in (
        NodeBusy("x", retry_after_s=w) for w in waits))
    assert max(per_second.values()) <= 10  # the Retry-After seconds hold `rate` clients each


def test_turns_already_past_are_not_booked_after_and_none_lies_beyond_the_cap() -> None:
    clock = ManualClock()
    admission = Admission(clock, Limit(rate=1.0, burst=1))
    admission.admit()
    assert refusal(admission).retry_after_s == pytest.approx(1.0)
    clock.advance(5)  # the booked turn passed unused; the bucket is full again
    admission.admit()
    assert refusal(admission).retry_after_s == pytest.approx(1.0)
    for _ in range(200):
        wait = refusal(admission).retry_after_s
    assert wait == pytest.approx(MAX_RETRY_S)


def test_a_draining_node_refuses_every_upgrade_with_a_wait_within_the_window() -> None:
    admission = Admission(ManualClock(), None, random.Random(7))
    admission.admit()  # no limit: admitted
    assert not admission.draining
    admission.start_draining(4.0)
    assert admission.draining and admission.drain_window_s == 4.0
    waits = []
    for _ in range(100):
        refused = refusal(admission)
        assert (refused.status, refused.code) == (503, "draining")
        waits.append(refused.retry_after_s)
    assert all(0 <= w <= 4.0 for w in waits)
    assert len({round(w, 3) for w in waits}) > 50  # jittered, not one instant for all
