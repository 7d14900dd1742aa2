"""The ``/v1/ws`` endpoint over a real uvicorn and a real client, with a live bus of our own
whose registry calls can fail: a socket that cannot be registered is refused cleanly and
leaves nothing behind; one that cannot be unregistered is still cleaned up. A drain tells the
socket to go away, answers its send in flight, closes it with 1001 and refuses new ones."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.bus import LocalLiveBus
from gateway.connection import CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN
from gateway.endpoint import Gateway, GatewayConfig
from gateway.handlers import FrameHandlers
from gateway.hub import Hub
from gateway.live import LivePublisher
from gateway.presence import Status
from gateway.presence_contacts import StaticContacts
from gateway.presence_service import PresenceService
from gateway.sends import SendMany, SendOutcome
from inbox.accounts.security import TokenIssuer
from inbox.accounts.service import AccountService
from inbox.accounts.store_sqlite import SqliteAccountStore
from inbox.accounts.throttle import ClientLimits, ClientThrottle, Limit
from inbox.core.errors import Unavailable
from inbox.core.models import Caller
from inbox.messages.service import MessageService, SendRequest
from inbox.messages.store_sqlite import SqliteInboxStore
from inbox.ratelimit.limiter_memory import MemoryRateLimiter
from inbox.storage.sqlite_db import SqliteDatabase
from sync.service import SyncService
from tests.gateway.serving import serving
from tests.push.support import ManualClock

PASSWORD = "correct-horse"  # noqa: S105 (a test account's password)
GENEROUS = ClientLimits(*[Limit(rate=100.0, burst=100)] * 4)


class FlakyBus(LocalLiveBus):
    """The in-process bus, whose next ``fail_register`` registrations and ``fail_unregister``
    unregistrations fail as an unreachable registry does (``Unavailable``), and whose
    registrations wait for ``register_gate`` when one is set (a slow registry)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_register = 0
        self.fail_unregister = 0
        self.register_gate: asyncio.Event | None = None
        self.registering = asyncio.Event()  # set once a registration began (and waits)

    async def register(self, user_id: int, device_id: int) -> bool:
        self.registering.set()
        if self.register_gate is not None:
            await self.register_gate.wait()
        if self.fail_register > 0:
            self.fail_register -= 1
            raise Unavailable("the connection registry is unavailable")
        return await super().register(user_id, device_id)

    async def unregister(self, user_id: int, device_id: int) -> bool:
        went_offline = await super().unregister(user_id, device_id)
        if self.fail_unregister > 0:  # forgotten here, but the answer was lost
            self.fail_unregister -= 1
            raise Unavailable("the connection registry is unavailable")
        return went_offline


class HeldSends:
    """The gateway's ``send_many``: stores through ``store``, but while ``gate`` is clear a
    batch waits for it (a slow store, holding a send in flight)."""

    def __init__(self, store: SendMany) -> None:
        self._store = store
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def send_many(self, caller: Caller, requests: Sequence[SendRequest]
                        ) -> list[SendOutcome]:
        self.started.set()
        await self.gate.wait()
        return await self._store(caller, requests)


@dataclass
class Rig:
    """A gateway over embedded stores and a ``FlakyBus``, served by uvicorn on ``url``."""

    gateway: Gateway
    bus: FlakyBus
    accounts: SqliteAccountStore
    presence: PresenceService
    clock: ManualClock
    messages: MessageService
    sends: HeldSends
    token: str
    user_id: int
    device_id: int
    url: str = ""
    served: list[BaseException | None] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> ClientConnection:
        self.done.clear()
        return await connect(self.url, additional_headers={"Authorization":
                                                           f"Bearer {self.token}"})

    async def served_once(self) -> BaseException | None:
        """Wait until the gateway's ``serve`` of the last socket returned; what it raised."""
        async with asyncio.timeout(10):
            await self.done.wait()
        return self.served[-1]


async def _frames_until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame the server sends, then the close code it closed with."""
    got: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(10):
            async for text in ws:
                got.append(json.loads(text))
    except ConnectionClosed:
        pass
    return got, ws.close_code


def _writer_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ws-writer-")]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    db = SqliteDatabase(tmp_path / "messenger.db")
    await db.open()
    clock = ManualClock()
    next_id = itertools.count(1).__next__
    accounts, inbox, bus = SqliteAccountStore(db), SqliteInboxStore(db), FlakyBus()
    throttle = ClientThrottle(MemoryRateLimiter(clock), GENEROUS)
    auth = AccountService(accounts, TokenIssuer("k" * 32, 3600), next_id, clock, throttle)
    user = await auth.signup("alice", PASSWORD, None, client="127.0.0.1")
    device, token = await auth.login("alice", PASSWORD, "cli", client="127.0.0.1")
    hub = Hub(bus)
    presence = PresenceService(bus, hub, StaticContacts(), accounts, clock, window_ms=1_000)
    messages = MessageService(inbox, accounts, next_id, clock, [LivePublisher(bus)])
    handlers = FrameHandlers(SyncService(inbox, accounts), {})
    sends = HeldSends(messages.send_many)
    gateway = Gateway(GatewayConfig(), auth, accounts, inbox, hub, handlers, clock, throttle,
                      presence, send_many=sends.send_many)

    rig = Rig(gateway, bus, accounts, presence, clock, messages, sends, token.access_token,
              user.user_id, device.device_id)

    async def endpoint(ws: WebSocket) -> None:
        try:
            await gateway.serve(ws)
            rig.served.append(None)
        except Exception as exc:
            rig.served.append(exc)
            raise
        finally:
            rig.done.set()

    async with serving(endpoint) as rig.url:
        yield rig
    await presence.close()
    await db.close()


async def test_a_socket_that_cannot_be_registered_is_told_to_retry_and_leaves_nothing(
    rig: Rig,
) -> None:
    rig.bus.fail_register = 1
    ws = await rig.connect()
    got, code = await _frames_until_closed(ws)
    assert await rig.served_once() is None

    assert [f["op"] for f in got] == ["hello", "error"]
    assert got[1]["code"] == "unavailable" and got[1]["message"]
    assert code == CLOSE_TRY_AGAIN
    assert rig.gateway.hub.count() == 0  # no Connection kept for a socket that is gone
    assert _writer_tasks() == []
    assert await rig.bus.online_devices(rig.user_id) == set()
    assert (await rig.presence.statuses([rig.user_id]))[rig.user_id].status is Status.OFFLINE

    ws = await rig.connect()  # the next attempt is served normally and counted online
    assert json.loads(await ws.recv())["op"] == "hello"
    await ws.send(json.dumps({"op": "ping", "ref": "p"}))
    assert json.loads(await ws.recv()) == {"op": "pong", "ref": "p"}
    assert await rig.bus.online_devices(rig.user_id) == {rig.device_id}
    await ws.close()
    assert await rig.served_once() is None
    assert await rig.bus.online_devices(rig.user_id) == set()


async def test_a_socket_that_cannot_be_unregistered_is_still_cleaned_up(rig: Rig) -> None:
    rig.bus.fail_unregister = 1
    ws = await rig.connect()
    assert json.loads(await ws.recv())["op"] == "hello"
    await ws.send(json.dumps({"op": "ping"}))
    assert json.loads(await ws.recv())["op"] == "pong"
    rig.clock.advance(60)
    closed_at = rig.clock.now_ms()
    await ws.close()

    assert await rig.served_once() is None
    assert rig.gateway.hub.count() == 0
    assert _writer_tasks() == []
    await rig.presence.idle()  # presence heard of the disconnect: last_seen recorded
    [device] = await rig.accounts.list_devices(rig.user_id)
    assert device.last_seen_ms == closed_at
    assert rig.presence.tracker.pending(rig.user_id)  # offline notice: after the settle window


async def test_an_entry_stored_while_the_socket_registers_is_streamed(rig: Rig) -> None:
    """The registry has not listed the socket yet when a message lands: its event goes to
    nobody. The client gets hello once the socket is registered, then the entry all the
    same, because the inbox head was read before hello and the store is read once
    registered."""
    rig.bus.register_gate = asyncio.Event()
    ws = await rig.connect()
    async with asyncio.timeout(5):
        await rig.bus.registering.wait()  # the head was read; the registry is slow
    me = Caller(rig.user_id, rig.device_id)
    await rig.messages.send(me, SendRequest("while registering", "c1", to_user=rig.user_id))
    rig.bus.register_gate.set()
    async with asyncio.timeout(5):
        assert json.loads(await ws.recv())["op"] == "hello"
        frame = json.loads(await ws.recv())
    assert frame["op"] == "entries"
    assert [e["body"] for e in frame["entries"]] == ["while registering"]
    await ws.close()
    assert await rig.served_once() is None


async def test_a_drain_says_goaway_answers_the_send_in_flight_then_closes_with_1001(
    rig: Rig,
) -> None:
    ws = await rig.connect()
    assert json.loads(await ws.recv())["op"] == "hello"
    rig.sends.gate.clear()
    await ws.send(json.dumps({"op": "send", "to_user": str(rig.user_id), "body": "hi",
                              "client_msg_id": "c1", "ref": "s1"}))
    await rig.sends.started.wait()  # the store holds the send: it is in flight
    draining = asyncio.create_task(rig.gateway.drain(window_s=2.0))
    goaway = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert goaway["op"] == "goaway" and 0 <= goaway["reconnect_after_ms"] <= 2000
    assert await silent_until_released(ws, rig.sends)  # not closed under the send
    got, code = await _frames_until_closed(ws)
    assert [f["ref"] for f in got if f["op"] == "sent"] == ["s1"]  # answered, then closed
    assert code == CLOSE_GOING_AWAY
    assert await asyncio.wait_for(draining, 10) == 1
    with pytest.raises(InvalidStatus) as refused:  # no new socket on a draining node
        await rig.connect()
    response = refused.value.response
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    assert json.loads(bytes(response.body or b""))["error"]["code"] == "draining"


async def silent_until_released(ws: ClientConnection, sends: HeldSends) -> bool:
    """True if nothing arrives for a while; then lets the held send be stored."""
    try:
        await asyncio.wait_for(ws.recv(), 0.2)
    except TimeoutError:
        sends.gate.set()
        return True
    return False


async def test_behind_a_server_without_denial_responses_a_draining_node_closes_with_1013(
    rig: Rig,
) -> None:
    """No HTTP refusal possible: the socket is accepted, told why and when to come back, and
    closed with 1013 (try again later), not 4001 (which tells a client to log in again)."""
    rig.gateway.admission.start_draining(5.0)
    sent: list[Message] = []
    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b"",
             "client": ("127.0.0.1", 5000), "subprotocols": [], "extensions": {}}

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await rig.gateway.serve(WebSocket(scope, receive, send))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    frame = json.loads(sent[1]["text"])
    assert frame["code"] == "draining" and 0 < frame["retry_after_ms"] <= 5000
    assert sent[2]["code"] == CLOSE_TRY_AGAIN
