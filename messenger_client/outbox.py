"""The outbox: messages waiting for the server's answer, sent one at a time, in order. No I/O.

Each message has a ``client_msg_id`` (the server's idempotency key), so a message whose answer
was lost is simply sent again: the server answers the original receipt and stores nothing
twice. Only the oldest message is in flight; the next goes once it is answered, so messages
land in the order they were queued even when one has to be retried. Answers:

- ``sent``: done, the message leaves the outbox.
- ``rate_limited``: retry after the server's ``retry_after_ms``.
- ``unavailable`` or another 5xx: retry after a backoff delay.
- credentials refused: keep it (the socket is about to close with 4001; a new login sends it).
- anything else (not a participant, too large...): refused for good, dropped and reported.

A disconnect puts the message in flight back at the head. The store (``Profile``) keeps the
outbox across restarts; ``seq`` is its order there. A message may name attachments (ids of
this user's uploads): they are kept with it and go with every attempt, so a retry names the
same files and the server, answering the original receipt, stores them once.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from messenger_client.backoff import Backoff
from messenger_client.errors import (
    ApiError,
    CredentialsError,
    InvalidRequest,
    RateLimited,
    Unavailable,
)

MAX_BODY_BYTES = 16 * 1024
MAX_CLIENT_MSG_ID = 128
MAX_ATTACHMENTS = 10


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    client_msg_id: str
    body: str
    to_user: int | None
    to_group: int | None
    attachments: tuple[int, ...] = ()
    """Ids of the sender's uploads the message carries, in the order it shows them."""


def check_attachments(attachment_ids: Iterable[int]) -> tuple[int, ...]:
    """The ids as a tuple, refused (``InvalidRequest``) where the server would refuse them:
    more than ``MAX_ATTACHMENTS``, one named twice, or not an id."""
    ids = tuple(attachment_ids)
    if any(isinstance(a, bool) or not isinstance(a, int) or a < 0 for a in ids):
        raise InvalidRequest("invalid_request", f"attachment ids must be ids, got {ids!r}", 422)
    if len(ids) > MAX_ATTACHMENTS:
        raise InvalidRequest("invalid_request",
                             f"at most {MAX_ATTACHMENTS} attachments per message", 422)
    if len(set(ids)) != len(ids):
        raise InvalidRequest("invalid_request", "an attachment is named twice", 422)
    return ids


def check_send(body: str, to_user: int | None, to_group: int | None,
               client_msg_id: str | None, *, has_attachments: bool = False) -> str:
    """Refuse what the server would refuse for good (before it is queued); the send's
    ``client_msg_id`` (a fresh one unless given). ``body`` may be empty only when the
    message has attachments (their ids are ``check_attachments``' to check)."""
    if (to_user is None) == (to_group is None):
        raise InvalidRequest("invalid_request", "give exactly one of to_user and to_group", 422)
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest("invalid_request", "body is not valid Unicode text", 422) from None
    if size > MAX_BODY_BYTES or (size == 0 and not has_attachments):
        raise InvalidRequest("invalid_request" if size == 0 else "message_too_large",
                             f"body must be 1..{MAX_BODY_BYTES} bytes of UTF-8 (or empty with "
                             f"attachments), got {size}", 422 if size == 0 else 413)
    cmid = client_msg_id if client_msg_id is not None else uuid.uuid4().hex
    if not 1 <= len(cmid) <= MAX_CLIENT_MSG_ID:
        raise InvalidRequest("invalid_request",
                             f"client_msg_id must be 1..{MAX_CLIENT_MSG_ID} characters", 422)
    return cmid


def is_retryable(error: ApiError) -> bool:
    """A send refused with this error goes out again later (see module docstring)."""
    return isinstance(error, RateLimited | Unavailable) or error.status >= 500


class Outbox:
    """Order, in-flight message and retry time of the pending sends."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self._items: dict[str, OutboxItem] = {}
        self._backoff = backoff or Backoff()
        self.in_flight: str | None = None
        self.not_before = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def pending(self) -> list[OutboxItem]:
        """Pending messages, oldest first."""
        return sorted(self._items.values(), key=lambda item: item.seq)

    def add(self, item: OutboxItem) -> None:
        """Queue a message (one already queued, by ``client_msg_id``, is left as it is)."""
        self._items.setdefault(item.client_msg_id, item)

    def next_to_send(self, now: float) -> OutboxItem | None:
        """The message to send now, if any: the oldest, once nothing is in flight."""
        if self.in_flight is not None or not self._items or now < self.not_before:
            return None
        head = self.pending()[0]
        self.in_flight = head.client_msg_id
        return head

    def wake_at(self) -> float | None:
        """When ``next_to_send`` may next return a message (None: only after an event)."""
        if self.in_flight is not None or not self._items:
            return None
        return self.not_before

    def on_sent(self, client_msg_id: str) -> OutboxItem | None:
        """The server stored it; the message that leaves the outbox (None if not ours)."""
        item = self._items.pop(client_msg_id, None)
        if client_msg_id == self.in_flight:
            self.in_flight = None
            self._backoff.reset()
        return item

    def on_error(self, client_msg_id: str, error: ApiError, now: float) -> OutboxItem | None:
        """The server refused the message in flight; the message dropped for good, if so."""
        if client_msg_id != self.in_flight:
            return None
        self.in_flight = None
        if isinstance(error, CredentialsError):
            self.not_before = math.inf
            return None
        if isinstance(error, RateLimited):
            self.not_before = now + error.retry_after_s
            return None
        if is_retryable(error):
            delay = self._backoff.next_delay()
            if isinstance(error, Unavailable) and error.retry_after_s is not None:
                delay = max(delay, error.retry_after_s)
            self.not_before = now + delay
            return None
        return self._items.pop(client_msg_id, None)

    def on_disconnect(self) -> None:
        """The socket went away: the message in flight goes again on the next one."""
        self.in_flight = None
        if self.not_before == math.inf:
            self.not_before = 0.0
