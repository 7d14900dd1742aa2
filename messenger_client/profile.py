"""The profile: one SQLite file per logged-in device, holding its session, cursor and outbox.

A restarted client resumes from it: same device, same token, the cursor of the last entry the
app handled, and the messages not yet answered. Several processes may share one profile (a
``messenger listen`` in the background and ``messenger send`` in the foreground): SQLite's
WAL mode and a busy timeout let them; the cursor only moves forward whoever writes it, and an
outbox message sent by two processes is stored once (the server's idempotency).

The file holds a bearer token, so it is created readable by its owner only.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from messenger_client.models import Session
from messenger_client.outbox import OutboxItem

PROFILE_ENV = "MESSENGER_PROFILE"
APP_DIR = "inbox-messenger"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    server_url TEXT NOT NULL,
    username TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    token TEXT NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_msg_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    to_user INTEGER,
    to_group INTEGER,
    attachments TEXT NOT NULL DEFAULT ''
);
"""


def default_profile_path(env: Mapping[str, str] | None = None) -> Path:
    """``$MESSENGER_PROFILE``, else ``$XDG_CONFIG_HOME/inbox-messenger/profile.db`` (with
    ``~/.config`` when ``XDG_CONFIG_HOME`` is unset)."""
    env = os.environ if env is None else env
    if env.get(PROFILE_ENV):
        return Path(env[PROFILE_ENV]).expanduser()
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / APP_DIR / "profile.db"


class Profile:
    """One profile file (see module docstring). Use as a context manager or ``close()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _create_private(path)
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed cursor survives power loss
        self._db.executescript(_SCHEMA)
        if "attachments" not in _outbox_columns(self._db):
            self._add_attachments_column()

    def __enter__(self) -> Profile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def session(self) -> Session | None:
        row = self._db.execute(
            "SELECT server_url, username, user_id, device_id, token FROM session WHERE id = 1"
        ).fetchone()
        return Session(row[0], row[1], int(row[2]), int(row[3]), row[4]) if row else None

    def save_session(self, session: Session) -> None:
        """Store a login. Another device than the stored one starts over: cursor 0, and the
        old device's unsent messages are dropped (they were not this account's to send)."""
        with self._transaction():
            old = self.session()
            if old is None or (old.server_url, old.device_id) != (session.server_url,
                                                                  session.device_id):
                self._db.execute("DELETE FROM session")
                self._db.execute("DELETE FROM outbox")
            self._db.execute(
                "INSERT INTO session (id, server_url, username, user_id, device_id, token) "
                "VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "username = excluded.username, token = excluded.token",
                (session.server_url, session.username, session.user_id, session.device_id,
                 session.token),
            )

    def _add_attachments_column(self) -> None:
        """Bring an outbox made before messages had attachments up to date (its messages
        have none); checked again under the write lock, as another process opening the same
        old file may have done it meanwhile."""
        with self._transaction():
            if "attachments" not in _outbox_columns(self._db):
                self._db.execute(
                    "ALTER TABLE outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT ''")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def cursor(self) -> int:
        row = self._db.execute("SELECT cursor FROM session WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def commit_cursor(self, cursor: int) -> int:
        """Move the cursor up to ``cursor`` (never back); the stored cursor afterwards."""
        self._db.execute("UPDATE session SET cursor = MAX(cursor, ?) WHERE id = 1", (cursor,))
        return self.cursor()

    def enqueue(self, client_msg_id: str, body: str, to_user: int | None,
                to_group: int | None, attachments: tuple[int, ...] = ()) -> OutboxItem:
        """Add a message to the outbox (the one already there under this id, if any), with
        the ids of the attachments it carries."""
        self._db.execute(
            "INSERT INTO outbox (client_msg_id, body, to_user, to_group, attachments) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_msg_id) DO NOTHING",
            (client_msg_id, body, to_user, to_group, ids_to_text(attachments)),
        )
        row = self._db.execute(
            "SELECT seq, client_msg_id, body, to_user, to_group, attachments FROM outbox "
            "WHERE client_msg_id = ?", (client_msg_id,)).fetchone()
        return _item(row)

    def outbox(self) -> list[OutboxItem]:
        """Unanswered messages, oldest first."""
        rows = self._db.execute(
            "SELECT seq, client_msg_id, body, to_user, to_group, attachments FROM outbox "
            "ORDER BY seq")
        return [_item(row) for row in rows]

    def remove(self, client_msg_id: str) -> None:
        """The server answered the message: it leaves the outbox."""
        self._db.execute("DELETE FROM outbox WHERE client_msg_id = ?", (client_msg_id,))


def ids_to_text(ids: tuple[int, ...]) -> str:
    """Attachment ids as the outbox stores them: decimal, comma-separated (``""``: none)."""
    return ",".join(str(i) for i in ids)


def ids_from_text(text: str) -> tuple[int, ...]:
    """Inverse of ``ids_to_text``."""
    return tuple(int(part) for part in text.split(",")) if text else ()


def _item(row: tuple[Any, ...]) -> OutboxItem:
    seq, client_msg_id, body, to_user, to_group, attachments = row
    return OutboxItem(seq, client_msg_id, body, to_user, to_group, ids_from_text(attachments))


def _outbox_columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(outbox)")}


def _create_private(path: Path) -> None:
    """Create the file (and its directory) readable by the owner only, if missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
