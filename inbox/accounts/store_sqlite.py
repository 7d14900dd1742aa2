"""The embedded AccountStore: users and devices in the SQLite file of ``SqliteDatabase``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from inbox.core.errors import Conflict
from inbox.core.models import Device, PushTarget, User
from inbox.storage.sqlite_db import SqliteDatabase

DEVICE_COLUMNS = (
    "device_id, user_id, device_name, platform, active, cur_max_msg_id, created_at_ms,"
    " last_seen_ms, push_provider, push_token, push_topic"
)
USER_COLUMNS = "user_id, username, display_name, password_hash, created_at_ms"
_PUT_DEVICE = (
    f"INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id,"
    " device_name = excluded.device_name, platform = excluded.platform,"
    " active = excluded.active, created_at_ms = excluded.created_at_ms,"
    " last_seen_ms = excluded.last_seen_ms,"
    " cur_max_msg_id = MAX(devices.cur_max_msg_id, excluded.cur_max_msg_id),"
    " push_provider = COALESCE(excluded.push_provider, devices.push_provider),"
    " push_token = COALESCE(excluded.push_token, devices.push_token),"
    " push_topic = CASE WHEN excluded.push_token IS NULL THEN devices.push_topic"
    " ELSE excluded.push_topic END"
)


def _device(row: tuple[Any, ...] | None) -> Device | None:
    if row is None:
        return None
    push = PushTarget(row[8], row[9], row[10]) if row[9] is not None else None
    return Device(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6], row[7], push)


def _user(row: tuple[Any, ...] | None) -> User | None:
    return User(*row) if row is not None else None


class SqliteAccountStore:
    """AccountStore over ``SqliteDatabase`` (see ``inbox.accounts.port.AccountStore``)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create_user(self, user: User) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO users ({USER_COLUMNS}) VALUES (?,?,?,?,?)",
                    (user.user_id, user.username, user.display_name, user.password_hash,
                     user.created_at_ms),
                )
            except sqlite3.IntegrityError:
                raise Conflict(
                    f"username {user.username!r} is taken", code="username_taken"
                ) from None

        await self._db.run(insert)

    async def get_user(self, user_id: int) -> User | None:
        return await self._fetch_user("user_id", user_id)

    async def find_user(self, username: str) -> User | None:
        return await self._fetch_user("username", username)

    async def _fetch_user(self, column: str, value: object) -> User | None:
        sql = f"SELECT {USER_COLUMNS} FROM users WHERE {column} = ?"
        return await self._db.run(lambda conn: _user(conn.execute(sql, (value,)).fetchone()))

    async def put_device(self, device: Device) -> None:
        """Insert or update a device. Its cursor only moves up and a ``None`` push keeps the
        token the device has (tokens change through ``set_push``), as on Cassandra."""
        push = device.push
        row = (
            device.device_id, device.user_id, device.device_name, device.platform,
            int(device.active), device.cur_max_msg_id, device.created_at_ms, device.last_seen_ms,
            push.provider if push else None, push.token if push else None,
            push.topic if push else None,
        )
        # An upsert, not INSERT OR REPLACE: a replace would also delete any other device
        # holding the same (unique) push token, and lower a cursor an ack just raised.
        await self._db.run(lambda conn: conn.execute(_PUT_DEVICE, row))

    async def get_device(self, device_id: int) -> Device | None:
        sql = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?"
        return await self._db.run(lambda conn: _device(conn.execute(sql, (device_id,)).fetchone()))

    async def list_devices(self, user_id: int) -> list[Device]:
        sql = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = ? AND active = 1"
        sql += " ORDER BY device_id"

        def query(conn: sqlite3.Connection) -> list[Device]:
            return [d for r in conn.execute(sql, (user_id,)) if (d := _device(r)) is not None]

        return await self._db.run(query)

    async def devices_of(self, user_ids: Sequence[int]) -> dict[int, list[Device]]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        sql = (f"SELECT {DEVICE_COLUMNS} FROM devices WHERE active = 1 AND user_id IN "
               f"({','.join('?' * len(ids))}) ORDER BY device_id")

        def query(conn: sqlite3.Connection) -> dict[int, list[Device]]:
            out: dict[int, list[Device]] = {}
            for row in conn.execute(sql, ids):
                if (device := _device(row)) is not None:
                    out.setdefault(device.user_id, []).append(device)
            return out

        return await self._db.run(query)

    async def deactivate_device(self, device_id: int) -> None:
        await self._db.run(
            lambda conn: conn.execute(
                "UPDATE devices SET active = 0, push_provider = NULL, push_token = NULL,"
                " push_topic = NULL WHERE device_id = ?",
                (device_id,),
            )
        )

    async def ack(self, device_id: int, cursor: int) -> int:
        def update(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE devices SET cur_max_msg_id = max(cur_max_msg_id, ?) WHERE device_id = ?",
                (cursor, device_id),
            )
            row = conn.execute(
                "SELECT cur_max_msg_id FROM devices WHERE device_id = ?", (device_id,)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._db.transaction(update)

    async def touch(self, device_id: int, last_seen_ms: int) -> None:
        await self._db.run(
            lambda conn: conn.execute(
                "UPDATE devices SET last_seen_ms = ? WHERE device_id = ?",
                (last_seen_ms, device_id),
            )
        )

    async def set_push(self, device_id: int, target: PushTarget) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE devices SET push_provider = NULL, push_token = NULL, push_topic = NULL"
                " WHERE push_token = ? AND device_id != ?",
                (target.token, device_id),
            )
            conn.execute(
                "UPDATE devices SET push_provider = ?, push_token = ?, push_topic = ?"
                " WHERE device_id = ?",
                (target.provider, target.token, target.topic, device_id),
            )

        await self._db.transaction(update)

    async def clear_push(self, device_id: int, token: str | None = None) -> bool:
        sql = "UPDATE devices SET push_provider = NULL, push_token = NULL, push_topic = NULL"
        sql += " WHERE device_id = ? AND push_token IS NOT NULL"
        args: tuple[object, ...] = (device_id,)
        if token is not None:
            sql += " AND push_token = ?"
            args = (device_id, token)
        return await self._db.run(lambda conn: conn.execute(sql, args).rowcount > 0)

    async def ping(self) -> None:
        await self._db.run(lambda conn: conn.execute("SELECT 1").fetchone())
