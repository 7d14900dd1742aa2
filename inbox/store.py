"""Storage ports: what the services need from a backend, and the contract each must keep.

Each backend lives in its own ``<port>_<backend>.py`` module (``store_sqlite.py`` for the
embedded default, ``store_cassandra.py`` + ``log_redis.py`` in production). Every method may
raise ``inbox.errors.Unavailable`` when the backing store cannot answer; that error always
means "nothing happened, a retry is safe".
"""

from __future__ import annotations

from typing import Protocol

from inbox.models import AppendBatch, Appended, Device, InboxPage, Message, PushTarget, User


class InboxStore(Protocol):
    """Per-user inboxes (ordered logs of entries) and conversation history.

    Contract:
    - ``append`` is atomic and durable when it returns: the entry is in every listed inbox or
      in none. Positions in each inbox are strictly increasing in the order entries become
      visible to ``read`` (never a smaller position after a larger one was readable), and each
      is at least the draft's ``msg_id`` so positions stay Snowflake-shaped.
    - With an ``idempotency_key``, a second append with the same key writes nothing and returns
      the first receipt with ``replayed=True``, whatever its draft says.
    - ``read`` returns the entries after ``after`` in position order, at most ``limit``.
    """

    async def append(self, batch: AppendBatch) -> Appended:
        """Append ``batch.draft`` to each of ``batch.user_ids``' inboxes (see the contract)."""
        ...

    async def read(self, user_id: int, after: int, limit: int) -> InboxPage:
        """The entries of ``user_id``'s inbox with position > ``after``, oldest first."""
        ...

    async def head(self, user_id: int) -> int:
        """The largest position in ``user_id``'s inbox, 0 when it is empty."""
        ...

    async def history(self, conversation_id: str, before: int | None, limit: int) -> list[Message]:
        """Messages of a conversation with ``msg_id < before`` (all when None), newest first.

        Messages deleted for everyone are left out.
        """
        ...

    async def get_message(self, msg_id: int) -> Message | None:
        """One message by id, or None when unknown or deleted for everyone."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; ``Unavailable`` otherwise (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


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


class MuteStore(Protocol):
    """Per-user conversation mutes (no pushes while muted)."""

    async def set_mute(self, user_id: int, conversation_id: str, until_ms: int | None) -> None:
        """Mute until ``until_ms`` (None: forever); a time in the past unmutes."""
        ...

    async def muted(self, user_id: int, conversation_id: str, now_ms: int) -> bool:
        """Whether the conversation is muted for the user at ``now_ms``."""
        ...
