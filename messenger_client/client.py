"""``Client``: one logged-in device, live over a WebSocket with REST beside it.

    async with Client("alice.db") as client:
        await client.send("hi", to_user=bob_id)
        async for event in client.events():
            ...

The client keeps one WebSocket up (reconnecting with backoff), streams the inbox from the
profile's cursor with no gap and no duplicate, and sends the outbox. ``api`` is the REST API
as this device (groups, history, presence, devices...).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from messenger_client import frames
from messenger_client.backoff import Backoff, BackoffPolicy
from messenger_client.connection import Link
from messenger_client.errors import MessengerError, NotFound, NotLoggedIn
from messenger_client.events import Disconnected, Event, Stopped
from messenger_client.models import Entry, Receipt, Session
from messenger_client.outbox import Outbox, OutboxItem, check_attachments, check_send
from messenger_client.profile import Profile, default_profile_path
from messenger_client.reconnect import Stop, plan
from messenger_client.rest import RestApi, websocket_url
from messenger_client.session import Core, LiveSession
from messenger_client.stream import InboxStream

ProfileLike = Profile | Path | str | None


def open_profile(profile: ProfileLike) -> Profile:
    """A ``Profile`` as given, or opened from a path (the default path for None)."""
    if isinstance(profile, Profile):
        return profile
    return Profile(Path(profile) if profile is not None else default_profile_path())


async def login(server_url: str, username: str, password: str, *, profile: ProfileLike = None,
                signup: bool = False, display_name: str | None = None,
                device_name: str | None = None, platform: str = "cli") -> Session:
    """Log in (after signing up if ``signup``) and store the session in the profile.

    A profile already holding this user's device on this server logs that device in again
    (same device id, cursor and outbox); otherwise a new device starts at cursor 0.
    """
    store = open_profile(profile)
    try:
        async with RestApi(server_url) as api:
            if signup:
                await api.signup(username, password, display_name)
            old = store.session()
            known = (old.device_id if old is not None and old.username == username
                     and old.server_url == api.server_url else None)
            try:
                session = await api.login(username, password, platform=platform,
                                          device_id=known, device_name=device_name)
            except NotFound:  # the stored device was logged out: a new one
                session = await api.login(username, password, platform=platform,
                                          device_name=device_name)
        store.save_session(session)
        return session
    finally:
        if store is not profile:
            store.close()


class Client:
    """One device's live connection (see module docstring), from a profile file (the default
    profile for None) or an open ``Profile`` (left open on ``aclose``).

    ``receive=False`` makes a send-only client: it never syncs and yields no events (the
    ``messenger send`` command). ``clock``, ``rng`` and ``backoff`` are for tests.
    """

    def __init__(self, profile: ProfileLike = None, *, receive: bool = True,
                 backoff: BackoffPolicy | None = None, open_timeout_s: float = 10,
                 queue_size: int = 1000, clock: Callable[[], float] = time.monotonic,
                 rng: Callable[[], float] = random.random) -> None:
        store = open_profile(profile)
        self._owns_profile = store is not profile
        session = store.session()
        if session is None:
            if self._owns_profile:
                store.close()
            raise NotLoggedIn(f"no session in {store.path}: log in first")
        self.session = session
        self.profile = store
        self.api = RestApi(session.server_url, session.token)
        self.receive = receive
        self._backoff = Backoff(backoff, rng)
        self._open_timeout_s = open_timeout_s
        self._core = Core(store, InboxStream(store.cursor()), Outbox(Backoff(backoff, rng)),
                          receive, clock, asyncio.Queue(queue_size))
        self._task: asyncio.Task[None] | None = None
        self._link: Link | None = None
        self._fatal: MessengerError | None = None

    async def __aenter__(self) -> Client:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        """Connect in the background (and keep reconnecting) until ``aclose``."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="messenger-client")

    async def aclose(self) -> None:
        """Disconnect; unsent messages stay in the profile's outbox for the next run."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.api.aclose()
        if self._owns_profile:
            self.profile.close()

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def cursor(self) -> int:
        """The last entry the app handled (persisted)."""
        return self._core.stream.committed

    def pending(self) -> list[OutboxItem]:
        """Messages not answered yet, oldest first."""
        self._core.reload_outbox()
        return self._core.outbox.pending()

    async def _run(self) -> None:
        url = websocket_url(self.session.server_url)
        try:
            while True:
                opened = await Link.open(url, self.session.token, timeout_s=self._open_timeout_s,
                                         clock=self._core.clock)
                if isinstance(opened, Link):
                    self._link = opened
                    try:
                        closed = await LiveSession(opened, self._core).run()
                    finally:
                        self._link = None
                else:
                    closed = opened
                step = plan(closed, self._backoff)
                if isinstance(step, Stop):
                    await self._stop(step.error)
                    return
                await self._core.emit(Disconnected(closed.code, closed.reason, step.delay_s,
                                                   closed.goaway_ms))
                await asyncio.sleep(step.delay_s)
        except MessengerError as exc:
            await self._stop(exc)
        except Exception as exc:
            await self._stop(MessengerError(f"client stopped: {exc!r}"))
            raise

    async def _stop(self, error: MessengerError) -> None:
        self._fatal = error
        self._core.fail_waiters(error)
        await self._core.emit(Stopped(error))

    async def events(self) -> AsyncIterator[Event]:
        """Inbox entries (in order, each once) and other events, as they come.

        An entry counts as handled, and the cursor moves past it, when you ask for the next
        event (or call ``commit``). Raises the error that stopped the client (a
        ``CredentialsError`` when the server refused the credentials).
        """
        if not self.receive:
            raise MessengerError("a send-only client (receive=False) has no events")
        while True:
            item = await self._core.events.get()
            if isinstance(item, Stopped):
                self._core.events.put_nowait(item)  # so every later call raises too
                raise item.error
            yield item
            if isinstance(item, Entry):
                self.commit(item)

    def commit(self, entry: Entry) -> None:
        """Mark ``entry`` (and all before it) handled: persisted, acked, never handed again."""
        self._core.commit(entry.id)

    def enqueue(self, body: str, *, to_user: int | None = None, to_group: int | None = None,
                client_msg_id: str | None = None, attachments: Iterable[int] = ()
                ) -> OutboxItem:
        """Put a message in the outbox (persisted at once, with its attachment ids) and
        return; it goes out, in order, whenever the client is connected, this run or a later
        one."""
        if self._fatal is not None:
            raise self._fatal
        ids = check_attachments(attachments)
        cmid = check_send(body, to_user, to_group, client_msg_id, has_attachments=bool(ids))
        item = self.profile.enqueue(cmid, body, to_user, to_group, ids)
        self._core.outbox.add(item)
        self._core.outbox_changed.set()
        return item

    async def send(self, body: str, *, to_user: int | None = None, to_group: int | None = None,
                   client_msg_id: str | None = None, attachments: Iterable[int] = ()
                   ) -> Receipt:
        """Send a message and wait until the server stored it (waits while offline).

        Exactly one of ``to_user`` (a direct chat; yourself for notes) and ``to_group``.
        ``attachments``: ids of this user's uploads (``api.upload``), at most 10; ``body``
        may then be ``""``. Raises the server's refusal (``Forbidden``, ``NotFound`` for an
        attachment that is not yours or was collected, ``TooLarge``...); transient failures
        are retried. A retry with the same ``client_msg_id`` is never stored twice.
        """
        item = self.enqueue(body, to_user=to_user, to_group=to_group,
                            client_msg_id=client_msg_id, attachments=attachments)
        return await self.wait_sent(item.client_msg_id)

    async def wait_sent(self, client_msg_id: str) -> Receipt:
        """Wait for an outbox message's receipt, or its refusal (the client must be running;
        a message answered earlier in this run answers at once)."""
        if self._task is None:
            raise MessengerError("the client is not running: use `async with` or start()")
        if self._fatal is not None:
            raise self._fatal
        self._core.reload_outbox()
        return await asyncio.shield(self._core.waiter(client_msg_id))

    async def flush(self) -> None:
        """Wait until every message in the outbox is answered (sent or refused)."""
        for item in self.pending():
            with contextlib.suppress(MessengerError):
                await self.wait_sent(item.client_msg_id)
        if self._fatal is not None:
            raise self._fatal

    async def typing(self, conversation_id: str) -> bool:
        """Tell the conversation's other members you are typing; False when offline (typing
        notices are never queued: a late one means nothing)."""
        link = self._link
        return link is not None and await link.send(frames.typing(conversation_id))

    async def mark_read(self, conversation_id: str, up_to_msg_id: int) -> None:
        """Read marker (REST): clears unread and tells your other devices and the peer."""
        await self.api.mark_read(conversation_id, up_to_msg_id)

    async def leave_group(self, group_id: int) -> None:
        await self.api.remove_member(group_id, self.session.user_id)

    async def catch_up(self, page_size: int = 200) -> AsyncIterator[Entry]:
        """Entries after the cursor over REST, page by page, for clients that do not keep a
        socket (``messenger sync``); committed like ``events()``, acked at the end."""
        stream = self._core.stream
        cursor = stream.received
        while True:
            page = await self.api.sync(cursor, page_size)
            for entry in stream.accept(page.entries):
                yield entry
                self.commit(entry)
            cursor = max(cursor, page.cur_max_msg_id)
            if not page.has_more:
                break
        if stream.committed > 0:
            await self.api.ack(stream.committed)
