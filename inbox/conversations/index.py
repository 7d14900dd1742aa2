"""Keeps every participant's conversation list current as entries land.

``ConversationIndex`` is a ``MessageService`` append step: after an append is durable (and
again when it is replayed, so a retry heals a failed index write) it raises each
participant's newest activity in the conversation, for a group event that adds members their
join point first (a member added to a group must not see its history as unread), and for one
that removes members their departure (delete-for-everyone still reaches them).
Only ``message`` and ``group_event`` entries are activity; ``read`` and ``delete`` are not.

A replay carries the *new* request's batch: a client may reuse a ``client_msg_id`` towards
someone else, and the store answers with the original receipt. So a replay is indexed for the
original conversation's participants (both users of a direct chat, a group's current
members), never for the new request's audience, which may have nothing to do with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inbox.conversations.port import ConversationStore
from inbox.core.errors import NotFound
from inbox.core.ids import parse_conversation_id
from inbox.core.models import AppendBatch, Appended, EntryDraft, EntryKind
from inbox.core.participants import Participants
from inbox.messages.service import Appends

_JOIN_EVENTS = frozenset({"created", "members_added"})
_LEAVE_EVENT = "member_removed"


@dataclass(frozen=True, slots=True)
class Activity:
    """What an append changes in the index: ``user_ids`` saw activity ``msg_id`` in the
    conversation, ``joined`` (a subset) joined it at that point and ``left`` left it."""

    conversation_id: str
    msg_id: int
    user_ids: tuple[int, ...]
    joined: tuple[int, ...] = ()
    left: tuple[int, ...] = ()


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


def _group_event(draft: EntryDraft) -> str | None:
    if draft.kind is not EntryKind.GROUP_EVENT or draft.group is None:
        return None
    event = draft.group.get("event")
    return event if isinstance(event, str) else None


def joined_users(draft: EntryDraft, user_ids: tuple[int, ...]) -> tuple[int, ...]:
    """Recipients that a group event makes members: everyone on ``created``, the added ids on
    ``members_added``; nobody for any other entry."""
    event = _group_event(draft)
    if event not in _JOIN_EVENTS:
        return ()
    if event == "created":
        return user_ids
    added = _as_ids(draft.group.get("user_ids") if draft.group else None)
    return tuple(uid for uid in user_ids if uid in added)


def left_users(draft: EntryDraft) -> tuple[int, ...]:
    """The ids a ``member_removed`` group event removes; nobody for any other entry."""
    if _group_event(draft) != _LEAVE_EVENT or draft.group is None:
        return ()
    return tuple(sorted(_as_ids(draft.group.get("user_ids"))))


def is_activity(draft: EntryDraft) -> bool:
    """Whether entries of this draft's kind count as activity in a conversation."""
    return draft.kind in (EntryKind.MESSAGE, EntryKind.GROUP_EVENT)


def activity_of(batch: AppendBatch, appended: Appended,
                participants: Sequence[int] = ()) -> Activity | None:
    """The index change of one append, or None when the entry is not activity.

    A replay is indexed for ``participants``, the original conversation's (see the module
    docstring), at the original message's id, which its receipt carries (the batch's draft
    has a fresh, unused one). A replayed group event (the same key means the same change)
    sets join points and departures again, in case the first index write failed."""
    draft = batch.draft
    if not is_activity(draft):
        return None
    if not appended.replayed:
        user_ids = tuple(dict.fromkeys(batch.user_ids))
        return Activity(draft.conversation_id, draft.msg_id, user_ids,
                        joined_users(draft, user_ids), left_users(draft))
    if appended.receipt is None:
        return None
    receipt = appended.receipt
    user_ids = tuple(dict.fromkeys(participants))
    if draft.conversation_id != receipt.conversation_id:  # a key reused elsewhere
        return Activity(receipt.conversation_id, receipt.msg_id, user_ids)
    return Activity(receipt.conversation_id, receipt.msg_id, user_ids,
                    joined_users(draft, user_ids), left_users(draft))


def merge_activity(earlier: Activity | None, later: Activity) -> Activity:
    """One conversation's activity over several appends: the newest message, seen by
    everyone either names (joins and departures are recorded one by one, not merged)."""
    if earlier is None:
        return Activity(later.conversation_id, later.msg_id, later.user_ids)
    users = tuple(dict.fromkeys((*earlier.user_ids, *later.user_ids)))
    return Activity(later.conversation_id, max(earlier.msg_id, later.msg_id), users)


class ConversationIndex:
    """An ``AppendStep`` recording activity, joins and departures in a ``ConversationStore``."""

    def __init__(self, conversations: ConversationStore, participants: Participants) -> None:
        self._conversations = conversations
        self._participants = participants

    async def after_append(self, appends: Appends) -> None:
        """Record the appends' activity (idempotent: the store keeps maxima). Joins and
        departures first, so the list never shows history as unread; then one activity
        write per conversation, at its newest message (a max-register needs no more)."""
        newest: dict[str, Activity] = {}
        for batch, appended in appends:
            participants: list[int] = []
            if appended.replayed and appended.receipt is not None and is_activity(batch.draft):
                participants = await self._members(appended.receipt.conversation_id)
            activity = activity_of(batch, appended, participants)
            if activity is None:
                continue
            cid, msg_id = activity.conversation_id, activity.msg_id
            if activity.joined:
                await self._conversations.record_join(activity.joined, cid, msg_id)
            if activity.left:
                await self._conversations.record_departure(activity.left, cid, msg_id)
            newest[cid] = merge_activity(newest.get(cid), activity)
        await asyncio.gather(*(
            self._conversations.record_activity(a.user_ids, a.conversation_id, a.msg_id)
            for a in newest.values() if a.user_ids))

    async def _members(self, conversation_id: str) -> list[int]:
        """The conversation's participants now (none for a group that no longer exists)."""
        try:
            return await self._participants.members(parse_conversation_id(conversation_id))
        except NotFound:
            return []
