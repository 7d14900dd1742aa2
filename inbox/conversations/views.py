"""What a user sees of their conversations: the list, history pages and unread totals.

- ``summaries``: ``GET /v1/conversations``, newest activity first, each with its title (the
  peer's display name, the group's name; notes to self: one's own name), last visible message
  and unread count. Groups the user has left are not listed (and do not count), nor is a
  direct chat between two other users, whatever the index says (a second guard: only
  participants ever see a conversation).
- ``history``: ``GET /v1/conversations/{cid}/messages``, newest first, paged by ``before``,
  without messages deleted for everyone or hidden by this user; participants only.
- ``total_unread``: the push badge, the sum of the listed unread counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from inbox.accounts.port import AccountStore
from inbox.conversations.port import ConversationStore
from inbox.core.errors import DomainError, InvalidInput
from inbox.core.ids import ConversationRef, group_conversation_id, parse_conversation_id
from inbox.core.models import Caller, ConversationState, ConversationSummary, Message
from inbox.core.participants import Participants
from inbox.groups.port import GroupStore
from inbox.messages.port import InboxStore

HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 200
LOOKUP_CONCURRENCY = 32
"""Conversations summarised at once (each costs a few store reads)."""

T = TypeVar("T")


def check_history_limit(limit: int) -> int:
    """History pages hold 1..200 messages (422 otherwise)."""
    if not 1 <= limit <= HISTORY_MAX_LIMIT:
        raise InvalidInput(f"limit must be 1..{HISTORY_MAX_LIMIT}, got {limit}")
    return limit


def direct_peer(ref: ConversationRef, user_id: int) -> int:
    """The other user of a direct chat; oneself for notes to self."""
    assert ref.user_ids is not None  # noqa: S101 (a direct ref)
    low, high = ref.user_ids
    return high if low == user_id else low


def takes_part_directly(user_id: int, conversation_id: str) -> bool:
    """Whether ``conversation_id`` is a direct chat of ``user_id`` (False for groups and for
    anything unparsable)."""
    try:
        ref = parse_conversation_id(conversation_id)
    except DomainError:
        return False
    return ref.user_ids is not None and user_id in ref.user_ids


def current_states(user_id: int, states: Iterable[ConversationState],
                   group_ids: Iterable[int]) -> list[ConversationState]:
    """The states of conversations the user takes part in (its own direct chats; groups only
    while a member), in the given order."""
    member_of = {group_conversation_id(gid) for gid in group_ids}
    return [s for s in states if s.conversation_id in member_of
            or takes_part_directly(user_id, s.conversation_id)]


async def _bounded(tasks: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Await ``tasks`` with at most ``limit`` running at once, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(task: Awaitable[T]) -> T:
        async with gate:
            return await task

    return list(await asyncio.gather(*(one(t) for t in tasks)))


class ConversationViews:
    """Read models over the conversation index, history, accounts and groups."""

    def __init__(self, conversations: ConversationStore, inbox: InboxStore,
                 accounts: AccountStore, groups: GroupStore,
                 participants: Participants) -> None:
        self._conversations = conversations
        self._inbox = inbox
        self._accounts = accounts
        self._groups = groups
        self._participants = participants

    async def summaries(self, caller: Caller) -> list[ConversationSummary]:
        """The caller's conversation list, newest activity first."""
        states = await self._current(caller.user_id)
        return await _bounded((self._summary(caller.user_id, s) for s in states),
                              LOOKUP_CONCURRENCY)

    async def total_unread(self, user_id: int) -> int:
        """Unread messages over all the user's conversations (the push badge)."""
        return sum(s.unread for s in await self._current(user_id))

    async def history(self, caller: Caller, conversation_id: str, before: int | None,
                      limit: int = HISTORY_DEFAULT_LIMIT) -> list[Message]:
        """A page of history before ``before`` (newest first) for a participant."""
        check_history_limit(limit)
        ref = await self._participants.require(caller, conversation_id)
        return await self._visible(caller.user_id, ref.id, before, limit)

    async def _current(self, user_id: int) -> list[ConversationState]:
        states = await self._conversations.conversations(user_id)
        groups: list[int] = []
        if any(s.conversation_id.startswith("g:") for s in states):
            groups = await self._groups.groups_of(user_id)
        return current_states(user_id, states, groups)

    async def _visible(self, user_id: int, cid: str, before: int | None, limit: int
                       ) -> list[Message]:
        """History without the user's hidden messages: pages further while some were."""
        out: list[Message] = []
        while len(out) < limit:
            want = limit - len(out)
            page = await self._inbox.history(cid, before, want)
            if not page:
                break
            hidden = await self._conversations.hidden(user_id, cid, [m.msg_id for m in page])
            out += [m for m in page if m.msg_id not in hidden]
            if len(page) < want:
                break
            before = page[-1].msg_id
        return out

    async def _summary(self, user_id: int, state: ConversationState) -> ConversationSummary:
        ref = parse_conversation_id(state.conversation_id)
        # History from the newest activity down: a scan from "now" would walk every empty
        # time bucket since then first.
        title, last = await asyncio.gather(
            self._title(user_id, ref), self._visible(user_id, ref.id, state.last_msg_id + 1, 1)
        )
        kind = "group" if ref.is_group else "direct"
        return ConversationSummary(ref.id, kind, title, last[0] if last else None,
                                   state.unread)

    async def _title(self, user_id: int, ref: ConversationRef) -> str:
        if ref.group_id is not None:
            group = await self._groups.get(ref.group_id)
            return group.name if group is not None else ref.id
        peer = await self._accounts.get_user(direct_peer(ref, user_id))
        if peer is None:
            return ref.id
        return peer.display_name or peer.username
