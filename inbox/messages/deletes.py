"""Deleting messages: ``DELETE /v1/messages/{msg_id}?scope=me|everyone``.

``everyone`` is allowed to the sender within 24 hours of sending: a ``delete`` entry goes to
every participant's inbox and the inbox store marks the message deleted in history (in the
same append). In a group, "every participant" is everyone who may hold the message: the
current members and those who left since it was sent (the ``ConversationStore`` keeps
departures longer than the 24 h). ``me`` puts a ``delete`` entry in the caller's own inbox
only (its other devices) and hides the message from the caller's history, last message and
unread count. A repeat is a no-op that writes nothing. A message the caller cannot see is a
404, whether it exists or not (ids are guessable; existence is not leaked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from idgen.clock import Clock
from inbox.core.errors import DomainError, Forbidden, InvalidInput, NotFound
from inbox.core.ids import ConversationRef
from inbox.core.models import AppendBatch, Caller, EntryDraft, EntryKind, Message, MessageStatus
from inbox.core.participants import Participants
from inbox.messages.entry_keys import delete_key, hide_key
from inbox.messages.service import MessageService

DELETE_FOR_EVERYONE_WINDOW_MS = 24 * 3600 * 1000


class Scope(StrEnum):
    ME = "me"
    EVERYONE = "everyone"


def parse_scope(value: str) -> Scope:
    """``me`` or ``everyone``; anything else is InvalidInput (422)."""
    try:
        return Scope(value)
    except ValueError:
        raise InvalidInput(f"scope must be 'me' or 'everyone', got {value!r}") from None


def check_sender(message: Message, caller: Caller) -> None:
    """Only the sender may delete a message for everyone (403 otherwise)."""
    if message.sender_id != caller.user_id:
        raise Forbidden("only the sender may delete a message for everyone")


def check_window(message: Message, now_ms: int) -> None:
    """Deleting for everyone is allowed within 24 hours of sending (403 after)."""
    if now_ms - message.created_at_ms > DELETE_FOR_EVERYONE_WINDOW_MS:
        raise Forbidden("a message can be deleted for everyone only within 24 hours")


def delete_batch(caller: Caller, message: Message, scope: Scope, user_ids: Sequence[int],
                 now_ms: int) -> AppendBatch:
    """The ``delete`` entry for ``message``'s id, with its scope, for ``user_ids``' inboxes.
    Keyed (per user and message for ``me``, per message for ``everyone``): a retry, even one
    overlapping the first attempt, never writes it twice."""
    draft = EntryDraft(
        kind=EntryKind.DELETE,
        msg_id=message.msg_id,
        conversation_id=message.conversation_id,
        sender_id=caller.user_id,
        sender_device_id=caller.device_id,
        created_at_ms=now_ms,
        scope=scope.value,
    )
    if scope is Scope.ME:
        return AppendBatch(draft, (caller.user_id,),
                           idempotency_key=hide_key(caller.user_id, message.msg_id),
                           receipt_for=caller.user_id)
    return AppendBatch(draft, tuple(dict.fromkeys([caller.user_id, *user_ids])),
                       idempotency_key=delete_key(caller.user_id, message.msg_id),
                       receipt_for=caller.user_id)


class DeletionBook(Protocol):
    """What deletes read and write beside the inboxes (``inbox.conversations.port
    .ConversationStore`` keeps it: message states, hidden messages, departures)."""

    async def message_status(self, msg_id: int) -> MessageStatus | None:
        """The stored message, deleted for everyone or not; None when unknown."""
        ...

    async def hidden(self, user_id: int, conversation_id: str,
                     msg_ids: Sequence[int]) -> set[int]:
        """Those of ``msg_ids`` the user has hidden."""
        ...

    async def hide(self, user_id: int, conversation_id: str, msg_id: int) -> None:
        """Delete a message for this user only (idempotent)."""
        ...

    async def departed_since(self, conversation_id: str, msg_id: int) -> list[int]:
        """Users who left the conversation after ``msg_id``."""
        ...


@dataclass(frozen=True, slots=True)
class DeleteService:
    """Deletes for everyone or for the caller only (see the module docstring)."""

    conversations: DeletionBook
    participants: Participants
    messages: MessageService
    clock: Clock

    async def delete(self, caller: Caller, msg_id: int, scope: Scope) -> bool:
        """Delete ``msg_id`` in ``scope``; True if entries were written, False for a repeat."""
        status = await self.conversations.message_status(msg_id)
        if status is None:
            raise NotFound(f"no message {msg_id}")
        message = status.message
        try:
            ref = await self.participants.require(caller, message.conversation_id)
        except DomainError:
            raise NotFound(f"no message {msg_id}") from None
        if scope is Scope.EVERYONE:
            check_sender(message, caller)
        now = self.clock.now_ms()
        if scope is Scope.EVERYONE:
            # Appended again even when the message is marked deleted: that mark may belong to
            # an attempt that is still being stored, or will be fenced. The key makes a
            # finished one a replay, which writes nothing.
            if not status.deleted:
                check_window(message, now)
            holders = await self._holders(ref, message)
            batch = delete_batch(caller, message, scope, holders, now)
            return not (await self.messages.append(batch)).replayed
        if status.deleted:
            return False  # already gone for everyone: nothing left to hide
        cid = message.conversation_id
        if await self.conversations.hidden(caller.user_id, cid, [msg_id]):
            return False
        # The entry first, keyed: if hiding then fails, the retry replays it (nothing written
        # twice) and hides; hiding first would leave the devices untold after a failure.
        await self.messages.append(delete_batch(caller, message, scope, [caller.user_id], now))
        await self.conversations.hide(caller.user_id, cid, msg_id)
        return True

    async def _holders(self, ref: ConversationRef, message: Message) -> list[int]:
        """Who may hold ``message`` in their inbox: the sender, the participants, and in a
        group those who left after it was sent (members who joined later get the entry too:
        it is harmless, and they can see the message in history)."""
        members = await self.participants.members(ref)
        departed: list[int] = []
        if ref.is_group:
            departed = await self.conversations.departed_since(ref.id, message.msg_id)
        return list(dict.fromkeys([message.sender_id, *members, *departed]))
