"""Read receipts: ``POST /v1/conversations/{cid}/read`` and the WebSocket ``read`` op.

A read moves the reader's marker in the conversation (never backwards) and, when it moved,
appends a ``read`` entry to the reader's own inbox (its other devices) and, for a direct
chat, to the peer's, through ``MessageService.append`` so live delivery runs. A stale or
repeated read writes nothing.

The marker comes first (it is the truth unread counts are made of); the entry follows with an
idempotency key of its own (reader, conversation, ``up_to``). So when the append fails (a
503), the retry finds the marker at ``up_to`` already and appends the entry again: written if
it is missing, nothing if it is there. A repeated read is the same replay, writing nothing;
a stale one (the marker is further on) does not even try, as the later read's entry covers it.

``up_to_msg_id`` must name a message of that conversation (one deleted since counts: a
client may read up to a message that is being deleted); anything else is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from idgen.clock import Clock
from inbox.conversations.port import ConversationStore
from inbox.core.errors import NotFound
from inbox.core.ids import ConversationRef
from inbox.core.models import AppendBatch, Caller, EntryDraft, EntryKind
from inbox.core.participants import Participants
from inbox.messages.entry_keys import read_key
from inbox.messages.service import MessageService


def read_batch(caller: Caller, ref: ConversationRef, up_to: int, now_ms: int) -> AppendBatch:
    """The ``read`` entry of a moved marker: for the reader's inbox, and the peer's in a
    direct chat (notes to self: the reader's only); ``msg_id`` is ``up_to_msg_id``. Keyed by
    reader, conversation and ``up_to``, so it lands at most once."""
    draft = EntryDraft(
        kind=EntryKind.READ,
        msg_id=up_to,
        conversation_id=ref.id,
        sender_id=caller.user_id,
        sender_device_id=caller.device_id,
        created_at_ms=now_ms,
        up_to_msg_id=up_to,
    )
    users = [caller.user_id, *(ref.user_ids or ())]
    return AppendBatch(draft, tuple(dict.fromkeys(users)),
                       idempotency_key=read_key(caller.user_id, ref.id, up_to),
                       receipt_for=caller.user_id)


@dataclass(frozen=True, slots=True)
class ReadService:
    """Moves read markers and tells the reader's devices and the direct peer."""

    conversations: ConversationStore
    participants: Participants
    messages: MessageService
    clock: Clock

    async def mark_read(self, caller: Caller, conversation_id: str, up_to: int) -> bool:
        """Mark the conversation read up to message ``up_to``; True if this call wrote the
        ``read`` entry (False for a stale or repeated read, which writes nothing).

        422 malformed id, 404 unknown conversation or message, 403 not a participant."""
        ref = await self.participants.require(caller, conversation_id)
        status = await self.conversations.message_status(up_to)
        if status is None or status.message.conversation_id != ref.id:
            raise NotFound(f"no message {up_to} in {ref.id}")
        user_id = caller.user_id
        if (not await self.conversations.mark_read(user_id, ref.id, up_to)
                and await self.conversations.read_marker(user_id, ref.id) != up_to):
            return False  # stale: a read further on moved the marker and told the devices
        # Moved now, or by an earlier attempt of this read whose entry may have failed.
        batch = read_batch(caller, ref, up_to, self.clock.now_ms())
        return not (await self.messages.append(batch)).replayed
