"""The outbox: one message in flight, in order; retries and refusals (no server)."""

from __future__ import annotations

import math

import pytest

from messenger_client.backoff import Backoff, BackoffPolicy
from messenger_client.errors import (
    CredentialsError,
    Forbidden,
    InvalidRequest,
    RateLimited,
    Unavailable,
)
from messenger_client.outbox import Outbox, OutboxItem, check_attachments, check_send


def item(seq: int) -> OutboxItem:
    return OutboxItem(seq, f"c{seq}", f"body {seq}", to_user=7, to_group=None)


def outbox_with(*seqs: int) -> Outbox:
    box = Outbox(Backoff(BackoffPolicy(base_s=1, cap_s=4), rng=lambda: 0.5))
    for seq in seqs:
        box.add(item(seq))
    return box


def test_one_in_flight_oldest_first_next_after_the_answer() -> None:
    box = outbox_with(3, 1, 2)
    first = box.next_to_send(0)
    assert first is not None and first.seq == 1
    assert box.next_to_send(0) is None  # 1 is in flight
    assert box.on_sent("c1") == item(1)
    assert [i.seq for i in box.pending()] == [2, 3]
    second = box.next_to_send(0)
    assert second is not None and second.seq == 2


def test_a_disconnect_sends_the_message_in_flight_again_first() -> None:
    box = outbox_with(1, 2)
    box.next_to_send(0)
    box.on_disconnect()
    again = box.next_to_send(0)
    assert again is not None and again.seq == 1


def test_rate_limited_waits_the_servers_delay_then_retries_the_same_message() -> None:
    box = outbox_with(1, 2)
    box.next_to_send(0)
    assert box.on_error("c1", RateLimited("rate_limited", "slow", retry_after_s=3), now=10) is None
    assert box.wake_at() == 13
    assert box.next_to_send(12.9) is None
    retry = box.next_to_send(13)
    assert retry is not None and retry.seq == 1


def test_unavailable_backs_off_and_an_answer_resets_it() -> None:
    box = outbox_with(1)
    for expected in (0.5, 1.0, 2.0):
        box.next_to_send(math.inf)
        box.on_error("c1", Unavailable("unavailable", "store down"), now=0)
        assert box.not_before == expected
    box.next_to_send(math.inf)
    box.on_sent("c1")
    box.add(item(2))
    box.next_to_send(math.inf)
    box.on_error("c2", Unavailable("internal", "bug", 500), now=0)
    assert box.not_before == 0.5


def test_unavailable_with_retry_after_waits_at_least_that_long() -> None:
    """Another attempt of the same send is in flight: the server says when it is over."""
    box = outbox_with(1)
    box.next_to_send(0)
    box.on_error("c1", Unavailable("unavailable", "in flight", retry_after_s=5), now=10)
    assert box.wake_at() == 15
    box.next_to_send(math.inf)
    box.on_error("c1", Unavailable("unavailable", "in flight", retry_after_s=0.1), now=10)
    assert box.wake_at() == 11  # the backoff, when longer


def test_a_refused_message_is_dropped_and_the_next_goes() -> None:
    box = outbox_with(1, 2)
    box.next_to_send(0)
    assert box.on_error("c1", Forbidden("forbidden", "not a member"), now=0) == item(1)
    nxt = box.next_to_send(0)
    assert nxt is not None and nxt.seq == 2


def test_credentials_refused_holds_the_outbox_until_the_next_socket() -> None:
    box = outbox_with(1)
    box.next_to_send(0)
    assert box.on_error("c1", CredentialsError("unauthorized", "logged out"), now=0) is None
    assert box.next_to_send(1e9) is None
    box.on_disconnect()
    assert box.next_to_send(0) == item(1)


def test_answers_for_other_messages_change_nothing() -> None:
    box = outbox_with(1, 2)
    box.next_to_send(0)
    assert box.on_error("c2", Forbidden("forbidden", "x"), now=0) is None
    assert box.in_flight == "c1" and len(box) == 2
    assert box.on_sent("c9") is None
    box.add(item(1))  # already queued: left as it is
    assert len(box) == 2


@pytest.mark.parametrize(("body", "to_user", "to_group", "cmid", "code"), [
    ("", 1, None, None, "invalid_request"),
    ("x" * 16385, 1, None, None, "message_too_large"),
    ("é" * 8193, 1, None, None, "message_too_large"),  # 16386 bytes of UTF-8
    ("\ud800", 1, None, None, "invalid_request"),
    ("hi", None, None, None, "invalid_request"),
    ("hi", 1, 2, None, "invalid_request"),
    ("hi", 1, None, "", "invalid_request"),
    ("hi", 1, None, "c" * 129, "invalid_request"),
])
def test_sends_the_server_would_refuse_are_refused_before_they_are_queued(
        body: str, to_user: int | None, to_group: int | None, cmid: str | None, code: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_send(body, to_user, to_group, cmid)
    assert info.value.code == code


def test_check_send_keeps_a_given_id_and_makes_fresh_ones() -> None:
    assert check_send("x" * 16384, 1, None, "mine") == "mine"
    assert check_send("hi", None, 5, None) != check_send("hi", None, 5, None)


def test_a_message_of_attachments_alone_may_have_an_empty_body() -> None:
    assert check_send("", 1, None, "c", has_attachments=True) == "c"
    with pytest.raises(InvalidRequest) as info:
        check_send("x" * 16385, 1, None, "c", has_attachments=True)
    assert info.value.code == "message_too_large"


@pytest.mark.parametrize("ids", [
    list(range(11)), [5, 5], [-1], [True], ["7"],
])
def test_attachment_ids_the_server_would_refuse_are_refused_before_they_are_queued(
        ids: list[object]) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_attachments(ids)  # type: ignore[arg-type]
    assert info.value.code == "invalid_request"


def test_attachment_ids_keep_their_order() -> None:
    assert check_attachments(iter([9, 3, 2**63 - 1])) == (9, 3, 2**63 - 1)
    assert check_attachments(range(10)) == tuple(range(10))


def test_a_retry_names_the_same_attachments() -> None:
    box = Outbox()
    box.add(OutboxItem(1, "c1", "", to_user=7, to_group=None, attachments=(11, 12)))
    first = box.next_to_send(0)
    box.on_disconnect()
    again = box.next_to_send(0)
    assert first is not None and again is not None and again.attachments == (11, 12)
