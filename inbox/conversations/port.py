"""The conversation store ports: each user's conversations (activity, read markers,
unread counts, own deletions) and mutes. Backends: ``store_sqlite``/``mutes_sqlite`` and
``store_cassandra``/``mutes_cassandra``.

Every method may raise ``inbox.core.errors.Unavailable`` when the backing store cannot answer;
that error always means "nothing happened, a retry is safe".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inbox.core.models import ConversationState, MessageStatus

DEPARTURE_RETENTION_MS = 2 * 24 * 3600 * 1000
"""How long a ``ConversationStore`` keeps departures: twice the 24 h in which a message may
be deleted for everyone, so every departure after a still-deletable message is kept."""


class MuteStore(Protocol):
    """Per-user conversation mutes (no pushes while muted)."""

    async def set_mute(self, user_id: int, conversation_id: str, until_ms: int | None) -> None:
        """Mute until ``until_ms`` (None: forever); a time in the past unmutes."""
        ...

    async def muted(self, user_id: int, conversation_id: str, now_ms: int) -> bool:
        """Whether the conversation is muted for the user at ``now_ms``."""
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
