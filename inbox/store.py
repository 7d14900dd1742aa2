"""Storage ports: what the services need from a backend, and the contract each must keep.

Each backend lives in its own ``<port>_<backend>.py`` module (``store_sqlite.py`` for the
embedded default, ``store_cassandra.py`` + ``log_redis.py`` in production). Every method may
raise ``inbox.errors.Unavailable`` when the backing store cannot answer; that error always
means "nothing happened, a retry is safe".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inbox.errors import DomainError
from inbox.models import (
    AppendBatch,
    Appended,
    ConversationState,
    Device,
    Group,
    InboxPage,
    MembershipChange,
    Message,
    MessageStatus,
    PushTarget,
    SendReceipt,
    User,
)

DEPARTURE_RETENTION_MS = 2 * 24 * 3600 * 1000
"""How long a ``ConversationStore`` keeps departures: twice the 24 h in which a message may
be deleted for everyone, so every departure after a still-deletable message is kept."""


class InboxStore(Protocol):
    """Per-user inboxes (ordered logs of entries) and conversation history.

    Contract:
    - ``append`` is atomic and durable when it returns: the entry is in every listed inbox or
      in none. Positions in each inbox are strictly increasing in the order entries become
      visible to ``read`` (never a smaller position after a larger one was readable), and each
      is at least the draft's ``msg_id`` so positions stay Snowflake-shaped.
    - With an ``idempotency_key``, a second append with the same key writes nothing and returns
      the first receipt with ``replayed=True``, whatever its draft says.
    - ``read`` returns the entries after ``after`` in position order, at most ``limit``.
    """

    async def append(self, batch: AppendBatch) -> Appended:
        """Append ``batch.draft`` to each of ``batch.user_ids``' inboxes (see the contract)."""
        ...

    async def append_many(self, batches: Sequence[AppendBatch]
                          ) -> list[Appended | DomainError]:
        """``append`` each batch, in list order (a later batch never gets a smaller position
        in an inbox than an earlier one), each atomic on its own: its ``Appended``, or the
        ``DomainError`` (``Unavailable``) it failed with. One device's queued sends go
        through here together, in a few store round trips for all of them."""
        ...

    async def read(self, user_id: int, after: int, limit: int) -> InboxPage:
        """The entries of ``user_id``'s inbox with position > ``after``, oldest first."""
        ...

    async def head(self, user_id: int) -> int:
        """The largest position in ``user_id``'s inbox, 0 when it is empty."""
        ...

    async def history(self, conversation_id: str, before: int | None, limit: int) -> list[Message]:
        """Messages of a conversation with ``msg_id < before`` (all when None), newest first.

        Messages deleted for everyone are left out.
        """
        ...

    async def get_message(self, msg_id: int) -> Message | None:
        """One message by id, or None when unknown or deleted for everyone."""
        ...

    async def receipt(self, key: tuple[int, str]) -> SendReceipt | None:
        """The receipt a stored append with idempotency ``key`` answered, None if there is
        none (so a retry can be told its original answer before anything else is checked)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; ``Unavailable`` otherwise (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


class AccountStore(Protocol):
    """Users and their devices (sessions), with per-device sync cursors and push tokens."""

    async def create_user(self, user: User) -> None:
        """Insert ``user``; ``Conflict(code='username_taken')`` if the username exists."""
        ...

    async def get_user(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        ...

    async def find_user(self, username: str) -> User | None:
        """The user with this username, or None."""
        ...

    async def put_device(self, device: Device) -> None:
        """Insert or replace a device (login, re-login)."""
        ...

    async def get_device(self, device_id: int) -> Device | None:
        """The device with this id (active or logged out), or None."""
        ...

    async def list_devices(self, user_id: int) -> list[Device]:
        """The user's active devices, oldest first."""
        ...

    async def devices_of(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        """``list_devices`` of many users at once (users with no active device are left
        out), in a number of store requests that does not grow with ``user_ids``: push
        planning asks it once per message, not once per recipient."""
        ...

    async def deactivate_device(self, device_id: int) -> None:
        """Log the device out: it stays listed as inactive and loses its push token."""
        ...

    async def ack(self, device_id: int, cursor: int) -> int:
        """Raise the device's ``cur_max_msg_id`` to ``cursor`` (never lower it); return it."""
        ...

    async def touch(self, device_id: int, last_seen_ms: int) -> None:
        """Record when the device was last connected."""
        ...

    async def set_push(self, device_id: int, target: PushTarget) -> None:
        """Give the device this push token, taking it from any other device that had it."""
        ...

    async def clear_push(self, device_id: int, token: str | None = None) -> bool:
        """Remove the device's push token; with ``token``, only if it is still that token
        (compare-and-clear, so a token re-registered after a failure stays). True if removed."""
        ...


class MuteStore(Protocol):
    """Per-user conversation mutes (no pushes while muted)."""

    async def set_mute(self, user_id: int, conversation_id: str, until_ms: int | None) -> None:
        """Mute until ``until_ms`` (None: forever); a time in the past unmutes."""
        ...

    async def muted(self, user_id: int, conversation_id: str, now_ms: int) -> bool:
        """Whether the conversation is muted for the user at ``now_ms``."""
        ...


class GroupStore(Protocol):
    """Groups and their members (invariant 4: at most ``MAX_GROUP_MEMBERS``, atomically).

    Contract: every membership change is one atomic compare-and-set on the group, so two
    concurrent changes never both apply against the same old member list: concurrent adds
    racing for the last seats can never make a group exceed the cap. Changes that would
    exceed it raise ``Conflict(code="group_full")`` and change nothing (all or nothing).
    ``member_ids`` keep join order; ids already in are ignored. A group whose last member
    leaves stays stored, empty (its history still names it); nobody can reach it again.

    Each group has a version (1 when created, +1 per change) and records its latest change
    (``GroupChange``) in the same atomic write as the change, so that a change whose
    announcement failed can be announced again later, exactly as it happened. Every change
    method returns it as ``MembershipChange.last`` (for a no-op: the one recorded before).
    """

    async def create(self, group: Group) -> None:
        """Store a new group (``member_ids`` deduplicated, owner first) at version 1,
        recording the ``created`` change; ``group_full`` when it has more than
        ``MAX_GROUP_MEMBERS``; a retry of the same create is a no-op."""
        ...

    async def get(self, group_id: int) -> Group | None:
        """The group, or None when unknown."""
        ...

    async def claim_create_key(self, owner_id: int, client_key: str, group_id: int) -> int:
        """Bind the owner's create key to ``group_id`` unless it is bound already (atomic:
        of concurrent claims exactly one wins); return the group id the key is bound to."""
        ...

    async def add_members(self, group_id: int, user_ids: Sequence[int]) -> MembershipChange:
        """Add the ids not yet in, in the given order; ``NotFound`` for an unknown group,
        ``Conflict(code="group_full")`` (nothing added) past the cap. The change's
        ``user_ids`` are the ids actually added."""
        ...

    async def remove_member(self, group_id: int, user_id: int) -> MembershipChange:
        """Remove one member; an owner leaving hands ownership to the longest-standing
        remaining member. ``NotFound`` for an unknown group; removing a non-member changes
        nothing (empty ``user_ids``)."""
        ...

    async def groups_of(self, user_id: int) -> list[int]:
        """Ids of the groups ``user_id`` is a member of, ascending."""
        ...


class ConversationStore(Protocol):
    """Each user's conversations: newest activity, read marker, unread count, own deletions.

    Contract:
    - ``record_activity`` and ``record_join`` are max-registers per (user, conversation):
      idempotent, order-independent, never lowered (replays and races are harmless).
    - ``mark_read`` moves the read marker only forwards and says whether it moved; a stale or
      repeated read returns False and changes nothing, also under concurrent calls.
    - ``unread`` counts the conversation's messages with ``floor < msg_id <= last_msg_id``
      (``floor`` = max(read marker, join point)) sent by someone else, neither deleted for
      everyone nor hidden by this user. ``read``/``delete``/``group_event`` entries never count.
    - departures are kept for at least ``DEPARTURE_RETENTION_MS`` (longer than the 24 h in
      which a message may be deleted for everyone), then may be forgotten.
    """

    async def record_activity(self, user_ids: Sequence[int], conversation_id: str,
                              msg_id: int) -> None:
        """Raise each user's newest activity in the conversation to ``msg_id``. A group's
        activity is the group's own, seen by everyone who joined it (``record_join``):
        ``user_ids`` then only says who took part, so the store may write one row."""
        ...

    async def record_join(self, user_ids: Sequence[int], conversation_id: str,
                          msg_id: int) -> None:
        """Raise each user's join point to ``msg_id``: older messages never count as unread
        (a member added to a group does not inherit its history as unread)."""
        ...

    async def mark_read(self, user_id: int, conversation_id: str, up_to: int) -> bool:
        """Raise the read marker to ``up_to``; True if it moved, False if it was already there
        or further (nothing written)."""
        ...

    async def read_marker(self, user_id: int, conversation_id: str) -> int:
        """The user's read marker in the conversation, 0 when nothing was read."""
        ...

    async def conversations(self, user_id: int) -> list[ConversationState]:
        """The user's conversations with any activity, newest activity first, with unread."""
        ...

    async def conversation_ids(self, user_id: int) -> list[str]:
        """The ids of the user's conversations with any activity, in no particular order:
        what ``conversations`` lists, without counting anything (cheap)."""
        ...

    async def record_departure(self, user_ids: Sequence[int], conversation_id: str,
                               msg_id: int) -> None:
        """Record that ``user_ids`` left the (group) conversation at ``msg_id``, the
        ``member_removed`` event's id (idempotent)."""
        ...

    async def departed_since(self, conversation_id: str, msg_id: int) -> list[int]:
        """Users who left the conversation after ``msg_id`` (within the retention): those
        that may hold ``msg_id`` in their inboxes without being members any more."""
        ...

    async def hide(self, user_id: int, conversation_id: str, msg_id: int) -> None:
        """Delete a message for this user only (idempotent)."""
        ...

    async def hidden(self, user_id: int, conversation_id: str,
                     msg_ids: Sequence[int]) -> set[int]:
        """Those of ``msg_ids`` the user has hidden."""
        ...

    async def message_status(self, msg_id: int) -> MessageStatus | None:
        """The stored message with this id, deleted for everyone or not; None when unknown."""
        ...
