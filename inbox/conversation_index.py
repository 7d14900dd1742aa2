"""Keeps every participant's conversation list current as entries land.

``ConversationIndex`` is a ``MessageService`` append step: after an append is durable (and
again when a send is replayed, so a retry heals a failed index write) it raises each
recipient's newest activity in the conversation, and for a group event that adds members,
their join point first (a member added to a group must not see its history as unread).
Only ``message`` and ``group_event`` entries are activity; ``read`` and ``delete`` are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inbox.models import AppendBatch, Appended, EntryDraft, EntryKind
from inbox.store import ConversationStore

_JOIN_EVENTS = frozenset({"created", "members_added"})


@dataclass(frozen=True, slots=True)
class Activity:
    """What an append changes in the index: ``user_ids`` saw activity ``msg_id`` in the
    conversation, and ``joined`` (a subset) joined it at that point."""

    conversation_id: str
    msg_id: int
    user_ids: tuple[int, ...]
    joined: tuple[int, ...] = ()


def _as_ids(values: Any) -> set[int]:
    """Ids from a group payload list (ints in drafts; decimal strings tolerated)."""
    if not isinstance(values, list | tuple):
        return set()
    out: set[int] = set()
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            out.add(value)
        elif isinstance(value, str) and value.isascii() and value.isdigit():
            out.add(int(value))
    return out


def joined_users(draft: EntryDraft, user_ids: tuple[int, ...]) -> tuple[int, ...]:
    """Recipients that a group event makes members: everyone on ``created``, the added ids on
    ``members_added``; nobody for any other entry."""
    group = draft.group
    if draft.kind is not EntryKind.GROUP_EVENT or group is None:
        return ()
    event = group.get("event")
    if event not in _JOIN_EVENTS:
        return ()
    if event == "created":
        return user_ids
    added = _as_ids(group.get("user_ids"))
    return tuple(uid for uid in user_ids if uid in added)


def activity_of(batch: AppendBatch, appended: Appended) -> Activity | None:
    """The index change of one append, or None when the entry is not activity.

    A replayed send carries the original message's id in its receipt (the batch's draft has
    a fresh, unused one)."""
    draft = batch.draft
    if draft.kind not in (EntryKind.MESSAGE, EntryKind.GROUP_EVENT):
        return None
    user_ids = tuple(dict.fromkeys(batch.user_ids))
    if appended.replayed and appended.receipt is not None:
        receipt = appended.receipt
        return Activity(receipt.conversation_id, receipt.msg_id, user_ids)
    return Activity(draft.conversation_id, draft.msg_id, user_ids,
                    joined_users(draft, user_ids))


class ConversationIndex:
    """An ``AppendStep`` recording activity and joins in a ``ConversationStore``."""

    def __init__(self, conversations: ConversationStore) -> None:
        self._conversations = conversations

    async def after_append(self, batch: AppendBatch, appended: Appended) -> None:
        """Record the append's activity (idempotent: the store keeps maxima)."""
        activity = activity_of(batch, appended)
        if activity is None:
            return
        if activity.joined:  # before the activity, so the list never shows history as unread
            await self._conversations.record_join(activity.joined, activity.conversation_id,
                                                  activity.msg_id)
        await self._conversations.record_activity(activity.user_ids, activity.conversation_id,
                                                  activity.msg_id)
