"""A push notification's title: the group's name for a group message, else the sender's."""

from __future__ import annotations

from inbox.accounts.port import AccountStore
from inbox.core.ids import parse_conversation_id
from inbox.core.models import AppendBatch
from inbox.groups.port import GroupStore

FALLBACK_TITLE = "New message"


class PushTitles:
    """Looks up the title of a batch's push (once per message, only when a push is due)."""

    def __init__(self, accounts: AccountStore, groups: GroupStore) -> None:
        self._accounts = accounts
        self._groups = groups

    async def __call__(self, batch: AppendBatch) -> str:
        group_id = parse_conversation_id(batch.draft.conversation_id).group_id
        if group_id is not None:
            group = await self._groups.get(group_id)
            return group.name if group else FALLBACK_TITLE
        sender = await self._accounts.get_user(batch.draft.sender_id)
        return sender.display_name if sender else FALLBACK_TITLE
