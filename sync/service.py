"""The read path: a device pulls its inbox after its cursor and acknowledges what it applied."""

from __future__ import annotations

from collections.abc import Callable

from inbox.accounts.port import AccountStore
from inbox.messages.port import InboxStore
from sync.cursor import SyncPage, check_limit, page_after

AckListener = Callable[[int, int], None]
"""Told ``(device_id, cursor)`` of every ack this node takes, before it is stored."""


class SyncService:
    """Sync and ack for one user's devices."""

    def __init__(self, inbox: InboxStore, accounts: AccountStore,
                 on_ack: AckListener | None = None) -> None:
        """``on_ack`` hears each ack at once (the gateway's watch of un-acked live
        deliveries: what the device says it applied must not be pushed)."""
        self._inbox = inbox
        self._accounts = accounts
        self._on_ack = on_ack

    async def sync(self, user_id: int, cursor: int, limit: int) -> SyncPage:
        """Entries of the user's inbox after ``cursor``, at most ``limit``, in order."""
        page = await self._inbox.read(user_id, cursor, check_limit(limit))
        return page_after(cursor, page)

    async def ack(self, device_id: int, cursor: int) -> int:
        """Record that the device applied everything up to ``cursor``; return its cursor."""
        if self._on_ack is not None:
            self._on_ack(device_id, cursor)
        return await self._accounts.ack(device_id, cursor)
