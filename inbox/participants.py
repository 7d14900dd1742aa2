"""Who takes part in a conversation (invariant 5: only participants read or write it)."""

from __future__ import annotations

from inbox.conversations import ConversationRef, parse_conversation_id
from inbox.errors import Forbidden, NotFound
from inbox.models import Caller


def check_direct_participant(caller: Caller, ref: ConversationRef) -> None:
    """Forbidden unless the caller is one of the direct chat's two users."""
    assert ref.user_ids is not None  # noqa: S101 (a direct ref)
    if caller.user_id not in ref.user_ids:
        raise Forbidden(f"not a participant of {ref.id}")


async def require_participant(caller: Caller, conversation_id: str) -> ConversationRef:
    """Parse the id and check the caller takes part (422 malformed, 404 unknown, 403 not in)."""
    ref = parse_conversation_id(conversation_id)
    if ref.is_group:
        raise NotFound(f"no group conversation {conversation_id}")
    check_direct_participant(caller, ref)
    return ref
