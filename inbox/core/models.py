"""The data that flows through the inbox: messages, inbox entries, users, devices.

Plain frozen dataclasses with no I/O. Times are integer milliseconds since the Unix epoch;
ids are 64-bit Snowflake integers (their JSON form is a string, see ``gateway.wire``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from inbox.core.attachments import AttachmentRef


class EntryKind(StrEnum):
    MESSAGE = "message"
    DELETE = "delete"
    READ = "read"
    GROUP_EVENT = "group_event"


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An inbox entry before it has a position: the same draft fans out to every inbox."""

    kind: EntryKind
    msg_id: int
    conversation_id: str
    sender_id: int
    sender_device_id: int
    created_at_ms: int
    body: str | None = None
    up_to_msg_id: int | None = None
    scope: str | None = None
    group: dict[str, Any] | None = None
    attachments: tuple[AttachmentRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of one user's inbox; ``id`` is its position, increasing in visibility order."""

    id: int
    draft: EntryDraft

    @property
    def kind(self) -> EntryKind:
        return self.draft.kind


@dataclass(frozen=True, slots=True)
class InboxPage:
    """A contiguous run of one inbox after a cursor; ``has_more`` if the inbox holds more."""

    entries: list[Entry]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Message:
    """A message as conversation history shows it (``body`` is empty only for a message of
    attachments alone)."""

    msg_id: int
    conversation_id: str
    sender_id: int
    sender_device_id: int
    body: str
    created_at_ms: int
    attachments: tuple[AttachmentRef, ...] = ()


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What a send answers; stored with the idempotency key so a replay answers the same."""

    msg_id: int
    id: int
    conversation_id: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """One atomic append: the draft goes into each of ``user_ids``' inboxes.

    ``message`` is recorded in conversation history when set. ``idempotency_key`` (sender id,
    client_msg_id) makes the whole batch happen at most once; ``receipt_for`` is the user whose
    position becomes the receipt's ``id``.
    """

    draft: EntryDraft
    user_ids: tuple[int, ...]
    message: Message | None = None
    idempotency_key: tuple[int, str] | None = None
    receipt_for: int | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """Result of an append. ``positions`` and ``previous`` map user id to the new entry's
    position and to the position it follows (for gap-free live delivery). A replay of an
    idempotency key carries the original receipt and empty maps."""

    receipt: SendReceipt | None
    positions: dict[int, int] = field(default_factory=dict)
    previous: dict[int, int] = field(default_factory=dict)
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    display_name: str
    password_hash: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class PushTarget:
    provider: str
    token: str
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    device_id: int
    user_id: int
    device_name: str
    platform: str
    active: bool
    cur_max_msg_id: int
    created_at_ms: int
    last_seen_ms: int | None = None
    push: PushTarget | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the user and the device its token was issued to."""

    user_id: int
    device_id: int


MAX_GROUP_MEMBERS = 100
"""Invariant 4: a group holds at most this many members, its owner included."""


@dataclass(frozen=True, slots=True)
class Group:
    """A group chat: ``member_ids`` in join order (the owner is always one of them, unless the
    group was left empty by its last member)."""

    group_id: int
    name: str
    owner_id: int
    member_ids: tuple[int, ...]
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class GroupChange:
    """A group's latest membership change as its store recorded it, atomically with the
    change: the group's version after it, the event (``created``, ``members_added``,
    ``member_removed``) and the ids it concerned. Enough to announce the change again, keyed
    by the version so at most once, when its first announcement was lost."""

    version: int
    event: str
    user_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """The result of a membership change: the group after it and the ids it actually added
    or removed (empty when nothing changed). ``last`` is the group's latest recorded change:
    this one when something changed, else the one before (None when none is recorded)."""

    group: Group
    user_ids: tuple[int, ...]
    last: GroupChange | None = None


@dataclass(frozen=True, slots=True)
class ConversationState:
    """One user's view of one conversation: its newest activity (the msg_id of the latest
    message or group event), the user's read marker (0: nothing read) and unread count."""

    conversation_id: str
    last_msg_id: int
    read_up_to: int
    unread: int


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """A stored message and whether it was deleted for everyone (deletes look it up even
    when it is gone from history, so that a repeat is a no-op rather than a 404)."""

    message: Message
    deleted: bool


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A row of a user's conversation list (``GET /v1/conversations``)."""

    conversation_id: str
    kind: str  # "direct" | "group"
    title: str
    last_message: Message | None
    unread: int
