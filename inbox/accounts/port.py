"""The account store port: users and their devices (sessions), with per-device sync
cursors and push tokens. Backends: ``store_sqlite`` and ``store_cassandra``.

Every method may raise ``inbox.core.errors.Unavailable`` when the backing store cannot answer;
that error always means "nothing happened, a retry is safe".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inbox.core.models import Device, PushTarget, User


class AccountStore(Protocol):
    """Users and their devices (sessions), with per-device sync cursors and push tokens."""

    async def create_user(self, user: User) -> None:
        """Insert ``user``; ``Conflict(code='username_taken')`` if the username exists."""
        ...

    async def get_user(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        ...

    async def find_user(self, username: str) -> User | None:
        """The user with this username, or None."""
        ...

    async def put_device(self, device: Device) -> None:
        """Insert or replace a device (login, re-login)."""
        ...

    async def get_device(self, device_id: int) -> Device | None:
        """The device with this id (active or logged out), or None."""
        ...

    async def list_devices(self, user_id: int) -> list[Device]:
        """The user's active devices, oldest first."""
        ...

    async def devices_of(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        """``list_devices`` of many users at once (users with no active device are left
        out), in a number of store requests that does not grow with ``user_ids``: push
        planning asks it once per message, not once per recipient."""
        ...

    async def deactivate_device(self, device_id: int) -> None:
        """Log the device out: it stays listed as inactive and loses its push token."""
        ...

    async def ack(self, device_id: int, cursor: int) -> int:
        """Raise the device's ``cur_max_msg_id`` to ``cursor`` (never lower it); return it."""
        ...

    async def touch(self, device_id: int, last_seen_ms: int) -> None:
        """Record when the device was last connected."""
        ...

    async def set_push(self, device_id: int, target: PushTarget) -> None:
        """Give the device this push token, taking it from any other device that had it."""
        ...

    async def clear_push(self, device_id: int, token: str | None = None) -> bool:
        """Remove the device's push token; with ``token``, only if it is still that token
        (compare-and-clear, so a token re-registered after a failure stays). True if removed."""
        ...
