"""Which user ids exist, remembered: every send to a user checks that the user exists.

Accounts are never deleted, so a "yes" stays true and is kept (least recently used first
out); a "no" is asked again next time, as the account may be created meanwhile, on any node.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from inbox.core.models import User

DEFAULT_CAPACITY = 100_000
"""Ids remembered per process (about 10 MB)."""


class UserLookup(Protocol):
    """``inbox.accounts.port.AccountStore.get_user``."""

    async def get_user(self, user_id: int) -> User | None:
        """The user, or None if there is none."""
        ...


class KnownUsers:
    """``exists(user_id)`` with the positive answers cached."""

    def __init__(self, accounts: UserLookup, capacity: int = DEFAULT_CAPACITY) -> None:
        self._accounts = accounts
        self._capacity = capacity
        self._seen: OrderedDict[int, None] = OrderedDict()

    async def exists(self, user_id: int) -> bool:
        """Whether the account exists (a store read only for ids not seen lately)."""
        if user_id in self._seen:
            self._seen.move_to_end(user_id)
            return True
        if await self._accounts.get_user(user_id) is None:
            return False
        self._seen[user_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
