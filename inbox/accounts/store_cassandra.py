"""Cassandra ``AccountStore``: users, devices, cursors and push tokens.

How the contract's atomic parts are kept without a transaction:
- unique usernames: ``INSERT INTO users_by_name ... IF NOT EXISTS`` (a Paxos LWT) claims the
  name before the user row is written; a failed user write releases the claim again.
- monotonic ``ack``: ``device_cursors.cur_max_msg_id`` is a *max-register*: every write uses
  ``USING TIMESTAMP <cursor>``, so last-write-wins keeps the largest cursor whatever order
  writes land in, without a read-before-write or Paxos. ``ack`` then reads the merged value.
  Nothing else writes that table, so these synthetic timestamps never meet real ones.
- push tokens: every write of ``devices.push_*`` is an LWT (mixing LWT and plain writes on the
  same cells can reorder them), ``clear_push(device, token)`` is ``IF push_token = ?``, and
  ``devices_by_push_token`` finds the device that holds a token so ``set_push`` can take it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from inbox.core.errors import Conflict
from inbox.core.models import Device, PushTarget, User
from inbox.storage.coalesce import Coalescer
from inbox.storage.cql_session import CqlSession

_USER_COLS: Final = "user_id, username, display_name, password_hash, created_at_ms"
_DEVICE_COLS: Final = (
    "device_id, user_id, device_name, platform, active, created_at_ms, last_seen_ms, "
    "push_provider, push_token, push_topic"
)
ACCOUNT_STATEMENTS: Final = {
    "claim_name": "INSERT INTO users_by_name (username, user_id) VALUES (?, ?) IF NOT EXISTS",
    "release_name": "DELETE FROM users_by_name WHERE username = ? IF user_id = ?",
    "insert_user": f"INSERT INTO users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?)",
    "get_user": f"SELECT {_USER_COLS} FROM users WHERE user_id = ?",
    "find_user": "SELECT user_id FROM users_by_name WHERE username = ?",
    "insert_device": "INSERT INTO devices (device_id, user_id, device_name, platform, active, "
    "created_at_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "insert_device_user": "INSERT INTO devices_by_user (user_id, device_id) VALUES (?, ?)",
    "get_device": f"SELECT {_DEVICE_COLS} FROM devices WHERE device_id = ?",
    "user_devices": "SELECT device_id FROM devices_by_user WHERE user_id = ?",
    "users_devices": "SELECT device_id FROM devices_by_user WHERE user_id IN ?",
    "get_devices": f"SELECT {_DEVICE_COLS} FROM devices WHERE device_id IN ?",
    "get_cursors": "SELECT device_id, cur_max_msg_id FROM device_cursors WHERE device_id IN ?",
    "set_cursor": "UPDATE device_cursors USING TIMESTAMP ? SET cur_max_msg_id = ? "
    "WHERE device_id = ?",
    "get_cursor": "SELECT cur_max_msg_id FROM device_cursors WHERE device_id = ?",
    "touch": "UPDATE devices SET last_seen_ms = ? WHERE device_id = ?",
    "deactivate": "UPDATE devices SET active = false, push_provider = null, push_token = null, "
    "push_topic = null WHERE device_id = ? IF EXISTS",
    "set_push": "UPDATE devices SET push_provider = ?, push_token = ?, push_topic = ? "
    "WHERE device_id = ? IF EXISTS",
    "clear_push_if": "UPDATE devices SET push_provider = null, push_token = null, "
    "push_topic = null WHERE device_id = ? IF push_token = ?",
    "token_owner": "SELECT device_id FROM devices_by_push_token WHERE push_token = ?",
    "set_token_owner": "INSERT INTO devices_by_push_token (push_token, device_id) VALUES (?, ?)",
    "drop_token_owner": "DELETE FROM devices_by_push_token WHERE push_token = ? IF device_id = ?",
}


def _applied(rows: list[tuple[Any, ...]]) -> bool:
    return bool(rows and rows[0][0])


def _device(row: tuple[Any, ...], cursor: int) -> Device:
    """A ``devices`` row (``_DEVICE_COLS``) and the device's cursor as a ``Device``."""
    (did, uid, name, platform, active, created, seen, provider, token, topic) = row
    push = PushTarget(provider, token, topic) if token is not None else None
    return Device(did, uid, name, platform, bool(active), cursor, created, seen, push)


class CassandraAccountStore:
    """``inbox.accounts.port.AccountStore`` on Cassandra (see the module docstring)."""

    def __init__(self, cql: CqlSession) -> None:
        """Use a ``CqlSession`` prepared with ``ACCOUNT_STATEMENTS``."""
        self._cql = cql
        # Concurrent lookups (the push planning of many sends at once) share their requests.
        self._lookups: Coalescer[Sequence[int], dict[int, list[Device]]] = Coalescer(
            self._devices_together)

    async def create_user(self, user: User) -> None:
        """Insert ``user``; ``Conflict(code='username_taken')`` if the username exists."""
        rows = await self._cql.execute("claim_name", (user.username, user.user_id))
        if not _applied(rows) and rows[0][-1] != user.user_id:  # a retry of ours is fine
            raise Conflict(f"username {user.username!r} is taken", code="username_taken")
        try:
            await self._cql.execute("insert_user", (user.user_id, user.username,
                                                    user.display_name, user.password_hash,
                                                    user.created_at_ms))  # fmt: skip
        except BaseException:
            await asyncio.shield(self._release_name(user))
            raise

    async def _release_name(self, user: User) -> None:
        try:
            await self._cql.execute("release_name", (user.username, user.user_id))
        except Exception:  # noqa: S110 - best effort; the name stays taken, nothing breaks
            pass

    async def get_user(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        rows = await self._cql.execute("get_user", (user_id,))
        return User(*rows[0]) if rows else None

    async def find_user(self, username: str) -> User | None:
        """The user with this username, or None."""
        rows = await self._cql.execute("find_user", (username,))
        return await self.get_user(rows[0][0]) if rows else None

    async def put_device(self, device: Device) -> None:
        """Insert or replace a device. Its cursor only moves up (max-register) and a ``None``
        push keeps a token the device already has (tokens change through ``set_push``)."""
        await self._cql.execute_all([
            ("insert_device", (device.device_id, device.user_id, device.device_name,
                               device.platform, device.active, device.created_at_ms,
                               device.last_seen_ms)),
            ("insert_device_user", (device.user_id, device.device_id)),
            ("set_cursor", (device.cur_max_msg_id, device.cur_max_msg_id, device.device_id)),
        ])  # fmt: skip
        if device.push is not None:
            await self.set_push(device.device_id, device.push)

    async def get_device(self, device_id: int) -> Device | None:
        """The device with this id (active or logged out), or None."""
        rows, cursor = await asyncio.gather(
            self._cql.execute("get_device", (device_id,)),
            self._cql.execute("get_cursor", (device_id,)),
        )
        if not rows:
            return None
        cur = int(cursor[0][0]) if cursor and cursor[0][0] is not None else 0
        return _device(rows[0], cur)

    async def list_devices(self, user_id: int) -> list[Device]:
        """The user's active devices, oldest first."""
        return (await self.devices_of([user_id])).get(user_id, [])

    async def devices_of(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        """Active devices per user in three requests whatever the number of users (and
        whatever the number of concurrent callers: lookups of one loop iteration go
        together): the users' device ids, then the devices and their cursors side by side."""
        if not user_ids:
            return {}
        return await self._lookups.submit(user_ids)

    async def _devices_together(self, calls: Sequence[Sequence[int]]
                                ) -> list[dict[int, list[Device]]]:
        found = await self._devices([uid for call in calls for uid in call])
        return [{uid: found[uid] for uid in dict.fromkeys(call) if uid in found}
                for call in calls]

    async def _devices(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        users = list(dict.fromkeys(user_ids))
        ids = [int(row[0]) for row in await self._cql.execute("users_devices", (users,))]
        if not ids:
            return {}
        rows, cursors = await asyncio.gather(self._cql.execute("get_devices", (ids,)),
                                             self._cql.execute("get_cursors", (ids,)))
        cursor_of = {int(did): int(cur) for did, cur in cursors if cur is not None}
        wanted = set(users)
        out: dict[int, list[Device]] = {}
        for row in rows:
            device = _device(row, cursor_of.get(int(row[0]), 0))
            if device.active and device.user_id in wanted:
                out.setdefault(device.user_id, []).append(device)
        for devices in out.values():
            devices.sort(key=lambda d: (d.created_at_ms, d.device_id))
        return out

    async def deactivate_device(self, device_id: int) -> None:
        """Log the device out: it stays listed as inactive and loses its push token."""
        device = await self.get_device(device_id)
        await self._cql.execute("deactivate", (device_id,))
        if device is not None and device.push is not None:
            await self._cql.execute("drop_token_owner", (device.push.token, device_id))

    async def ack(self, device_id: int, cursor: int) -> int:
        """Raise the device's ``cur_max_msg_id`` to ``cursor`` (never lower it); return it."""
        await self._cql.execute("set_cursor", (cursor, cursor, device_id))
        rows = await self._cql.execute("get_cursor", (device_id,))
        return max(int(rows[0][0]), cursor) if rows and rows[0][0] is not None else cursor

    async def touch(self, device_id: int, last_seen_ms: int) -> None:
        """Record when the device was last connected."""
        await self._cql.execute("touch", (last_seen_ms, device_id))

    async def set_push(self, device_id: int, target: PushTarget) -> None:
        """Give the device this push token, taking it from any other device that had it."""
        owner = await self._cql.execute("token_owner", (target.token,))
        if owner and owner[0][0] != device_id:
            await self._clear_if(owner[0][0], target.token)
        current = await self.get_device(device_id)
        if current is None:
            return
        await self._cql.execute(
            "set_push", (target.provider, target.token, target.topic, device_id)
        )
        await self._cql.execute("set_token_owner", (target.token, device_id))
        if current.push is not None and current.push.token != target.token:
            await self._cql.execute("drop_token_owner", (current.push.token, device_id))

    async def clear_push(self, device_id: int, token: str | None = None) -> bool:
        """Remove the device's push token; with ``token`` only if it is still that token
        (compare-and-clear). True if a token was removed."""
        if token is None:
            device = await self.get_device(device_id)
            if device is None or device.push is None:
                return False
            token = device.push.token
        return await self._clear_if(device_id, token)

    async def _clear_if(self, device_id: int, token: str) -> bool:
        rows = await self._cql.execute("clear_push_if", (device_id, token))
        if _applied(rows):
            await self._cql.execute("drop_token_owner", (token, device_id))
            return True
        return False
