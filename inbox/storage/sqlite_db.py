"""The embedded default's database: one SQLite file, one connection, one thread.

All statements run on a single-thread executor, so every transaction is serialised: that is
what makes inbox positions follow commit (visibility) order without any extra locking, and it
keeps sqlite3's blocking calls off the event loop. WAL with ``synchronous=NORMAL`` survives a
process crash (kill -9) with every committed transaction; only a power loss can drop the last
few, which is the usual trade for an embedded single-node store (set ``durable_fsync`` for FULL).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from inbox.core.errors import Unavailable, dependency_failed
from inbox.storage.coalesce import Coalescer

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, device_name TEXT NOT NULL,
    platform TEXT NOT NULL, active INTEGER NOT NULL, cur_max_msg_id INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL, last_seen_ms INTEGER,
    push_provider TEXT, push_token TEXT UNIQUE, push_topic TEXT);
CREATE INDEX IF NOT EXISTS devices_by_user ON devices (user_id, device_id);
CREATE TABLE IF NOT EXISTS inbox (
    user_id INTEGER NOT NULL, id INTEGER NOT NULL, kind TEXT NOT NULL, msg_id INTEGER NOT NULL,
    conversation_id TEXT NOT NULL, sender_id INTEGER NOT NULL, sender_device_id INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL, body TEXT, up_to_msg_id INTEGER, scope TEXT, grp TEXT,
    attachments TEXT,
    PRIMARY KEY (user_id, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (user_id INTEGER PRIMARY KEY, head INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    msg_id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, sender_id INTEGER NOT NULL,
    sender_device_id INTEGER NOT NULL, body TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, attachments TEXT);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, msg_id);
CREATE TABLE IF NOT EXISTS sends (
    sender_id INTEGER NOT NULL, client_msg_id TEXT NOT NULL, msg_id INTEGER NOT NULL,
    id INTEGER NOT NULL, conversation_id TEXT NOT NULL, created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (sender_id, client_msg_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mutes (
    user_id INTEGER NOT NULL, conversation_id TEXT NOT NULL, until_ms INTEGER,
    PRIMARY KEY (user_id, conversation_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
    group_id INTEGER PRIMARY KEY, name TEXT NOT NULL, owner_id INTEGER NOT NULL,
    member_ids TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS group_members (
    user_id INTEGER NOT NULL, group_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, group_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_create_keys (
    owner_id INTEGER NOT NULL, client_key TEXT NOT NULL, group_id INTEGER NOT NULL,
    PRIMARY KEY (owner_id, client_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_changes (
    group_id INTEGER PRIMARY KEY, version INTEGER NOT NULL, event TEXT NOT NULL,
    user_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS user_conversations (
    user_id INTEGER NOT NULL, conversation_id TEXT NOT NULL,
    last_msg_id INTEGER NOT NULL DEFAULT 0, read_up_to INTEGER NOT NULL DEFAULT 0,
    joined_msg_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, conversation_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_activity (
    conversation_id TEXT PRIMARY KEY, last_msg_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hidden_messages (
    user_id INTEGER NOT NULL, conversation_id TEXT NOT NULL, msg_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, msg_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS departures (
    conversation_id TEXT NOT NULL, msg_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, msg_id, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attachments (
    attachment_id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, state TEXT NOT NULL,
    name TEXT NOT NULL, size INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
    content_type TEXT NOT NULL, sha256 TEXT NOT NULL, width INTEGER, height INTEGER,
    thumbnail_id INTEGER, parent_id INTEGER, gc_due_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS attachments_by_sha ON attachments (sha256);
CREATE TABLE IF NOT EXISTS attachment_refs (
    attachment_id INTEGER NOT NULL, msg_id INTEGER NOT NULL, conversation_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (attachment_id, msg_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attachment_refs_by_msg ON attachment_refs (msg_id);
CREATE TABLE IF NOT EXISTS attachment_gc (
    due_ms INTEGER NOT NULL, attachment_id INTEGER NOT NULL,
    PRIMARY KEY (due_ms, attachment_id)) WITHOUT ROWID;
"""
COLUMNS_ADDED: tuple[tuple[str, str, str], ...] = (
    # (table, column, declaration) added after the table's first release: databases made
    # before get them on open.
    ("inbox", "attachments", "TEXT"),
    ("messages", "attachments", "TEXT"),
)


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each of ``COLUMNS_ADDED`` a table lacks."""
    for table, column, declaration in COLUMNS_ADDED:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if present and column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


@dataclass(frozen=True, slots=True)
class _Failed:
    """One transaction's error inside a group commit (the others committed)."""

    error: Exception


class SqliteDatabase:
    """Owns the connection and the thread it runs on; ``run`` executes a function there."""

    def __init__(self, path: Path, *, schema: str | None = None, durable_fsync: bool = False,
                 busy_timeout_s: float = 5.0) -> None:
        """``schema`` defaults to the messenger's (``SCHEMA``); ``busy_timeout_s`` is how long
        a write waits for another process holding the file's lock (``push-worker``)."""
        self.path = path
        self._schema = SCHEMA if schema is None else schema
        self._durable_fsync = durable_fsync
        self._busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._writes: Coalescer[Callable[[sqlite3.Connection], Any], Any] = Coalescer(
            self._commit_together)

    async def open(self, extra_schema: str = "") -> None:
        """Create the file (and its directory) and the schema if missing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn = await self.run(self._connect)
        await self.run(lambda conn: conn.executescript(self._schema + extra_schema))
        await self.run(add_missing_columns)

    def _connect(self, _: sqlite3.Connection | None) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               timeout=self._busy_timeout_s)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self._durable_fsync else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread; storage errors become Unavailable."""
        if self._executor is None:
            raise Unavailable("the embedded database is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn)
        except (sqlite3.OperationalError, sqlite3.InterfaceError) as exc:
            # Locked, full, I/O failure, misuse: the request had no effect; an
            # IntegrityError, by contrast, is a bug and stays one.
            raise dependency_failed("the embedded database", "a query", exc) from exc

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        result = fn(self._conn)  # type: ignore[arg-type]  # None only while connecting
        if isinstance(result, sqlite3.Cursor):
            # A cursor finalised later on the event loop's thread, while this thread runs the
            # next statement, is an SQLITE_MISUSE ("bad parameter or other API misuse").
            result.close()
        return result

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` atomically: all its writes or none (it is rolled back if it raises).

        Group commit: the transactions submitted in one loop iteration go to the database
        thread together and commit as one SQLite transaction, each inside a savepoint of its
        own, so that one that raises rolls back alone. A busy node thus pays one thread hop
        and one commit for many writes; each caller still sees only its own outcome.
        """
        outcome = await self._writes.submit(fn)
        if isinstance(outcome, _Failed):
            raise outcome.error
        return cast(T, outcome)

    async def _commit_together(self, fns: Sequence[Callable[[sqlite3.Connection], Any]]
                               ) -> list[Any]:
        def job(conn: sqlite3.Connection) -> list[Any]:
            outcomes: list[Any] = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                for fn in fns:
                    conn.execute("SAVEPOINT one")
                    try:
                        outcomes.append(fn(conn))
                    except Exception as exc:  # that caller's failure, not the others'
                        conn.execute("ROLLBACK TO one")
                        outcomes.append(_Failed(exc))
                    conn.execute("RELEASE one")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return outcomes

        return await self.run(job)

    async def close(self) -> None:
        """Close the connection and stop the thread; idempotent."""
        if self._executor is None:
            return
        if self._conn is not None:
            await self.run(lambda conn: conn.close())
        self._executor.shutdown(wait=True)
        self._executor = None
        self._conn = None
