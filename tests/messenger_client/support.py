"""Helpers for the client's end-to-end tests: accounts in profile files, fast backoff, and an
app loop that collects a running client's events."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messenger_client import BackoffPolicy, Client, Entry, Event, MessengerError, login

PASSWORD = "correct-horse"  # noqa: S105 (test accounts)
FAST = BackoffPolicy(base_s=0.05, cap_s=0.5, stable_after_s=2.0)
HEARTBEAT_ENV = {"MESSENGER_HEARTBEAT_INTERVAL_MS": "1000"}


async def signup(server_url: str, tmp: Path, prefix: str = "u") -> Path:
    """A new user with one device logged in; the path of its profile."""
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    path = tmp / f"{username}.db"
    await login(server_url, username, PASSWORD, profile=path, signup=True)
    return path


def open_client(path: Path, **options: Any) -> Client:
    """A client with fast reconnects and its server URL from the profile."""
    return Client(path, backoff=FAST, open_timeout_s=3, **options)


class Inbox:
    """An app loop: takes every event of a running client (committing entries as it goes)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.events: list[Event] = []
        self.error: MessengerError | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._collect())

    @property
    def entries(self) -> list[Entry]:
        return [e for e in self.events if isinstance(e, Entry)]

    def bodies(self, sender_id: int | None = None) -> list[str]:
        """Bodies of the ``message`` entries (from ``sender_id`` only, if given)."""
        return [e.body or "" for e in self.entries
                if e.kind == "message" and sender_id in (None, e.sender_id)]

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def _collect(self) -> None:
        try:
            async for event in self.client.events():
                self.events.append(event)
                self._changed.set()
        except MessengerError as exc:
            self.error = exc
            self._changed.set()

    async def wait(self, done: Callable[[Inbox], bool], timeout: float = 20) -> None:
        """Until ``done(self)``; raises the error that stopped the client, or TimeoutError."""
        async with asyncio.timeout(timeout):
            while not done(self):
                if self.error is not None:
                    raise self.error
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10) -> None:
    """Poll ``check`` until it holds (for state that no event announces)."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


@dataclass
class Chat:
    """Alice and Bob, each with a running client and an app loop on it."""

    alice: Client
    bob: Client
    alice_inbox: Inbox
    bob_inbox: Inbox

    @property
    def a(self) -> int:
        return self.alice.session.user_id

    @property
    def b(self) -> int:
        return self.bob.session.user_id


@contextlib.asynccontextmanager
async def chat(tmp: Path, server_url: str, bob_url: str | None = None) -> AsyncIterator[Chat]:
    """Sign Alice and Bob up and run their clients (Bob's through ``bob_url``: a proxy)."""
    alice_path = await signup(server_url, tmp, "a")
    bob_path = await signup(bob_url or server_url, tmp, "b")
    async with open_client(alice_path) as alice, open_client(bob_path) as bob:
        pair = Chat(alice, bob, Inbox(alice), Inbox(bob))
        try:
            yield pair
        finally:
            await pair.alice_inbox.stop()
            await pair.bob_inbox.stop()


def assert_in_order_once(entries: list[Entry]) -> None:
    ids = [e.id for e in entries]
    assert ids == sorted(set(ids)), "entries out of order or duplicated"
