"""A node drains on SIGTERM: two real production nodes sharing Redis and Cassandra, a few
hundred sockets on the first, some of them sending when it gets SIGTERM.

Every socket gets ``goaway`` before a ``1001`` close; the node reports not ready and refuses
new upgrades (503 ``draining`` with ``Retry-After``) while REST is still served; it exits once
its drain window has passed. The clients reconnect to the second node after their own
``reconnect_after_ms``, and those reconnects are spread over the window. No acknowledged send
is lost, and a send left unanswered, retried with its ``client_msg_id``, is stored once.
Ctrl-C drains too, and Ctrl-C again stops at once; a repeated SIGTERM changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as connect_sync

from tests.api.backends import production_env, with_redis_db
from tests.api.server import Account, MessengerProcess, new_account, send, sync_all
from tests.api.wsclient import open_ws

DRAIN_REDIS_DB = 8
"""The two nodes' Redis database, apart from other tests' nodes."""
WINDOW_S = 2.0
SOCKETS = 300
ACCOUNTS = 30  # sockets per account: 10 (a device may hold several sockets)
SENDERS = 10
SEND_WINDOW = 4  # unanswered sends each sender keeps going
BIN_S = 0.25  # reconnect rates are counted per bin of this width


@dataclass
class Client:
    """One socket on the draining node and what became of it."""

    account: Account
    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # client_msg_id -> msg_id
    flowing: asyncio.Event = field(default_factory=asyncio.Event)  # 3 sends answered
    told_to_go: asyncio.Event = field(default_factory=asyncio.Event)  # goaway or closed
    close_code: int | None = None
    reconnect_at: float | None = None  # when it tried the other node (monotonic s)
    hello_at: float | None = None  # when the other node's hello came


@dataclass
class Sender:
    """A client sending to ``to`` over its socket; what it sent and what was answered."""

    client: Client
    to: Account
    sent: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, redis_server: Any, cassandra_server: Any
          ) -> Iterator[tuple[MessengerProcess, MessengerProcess]]:
    """The node that will drain (2 s window) and the one its clients move to."""
    env = {**with_redis_db(production_env(redis_server, cassandra_server, "drain"),
                           DRAIN_REDIS_DB),
           "MESSENGER_UPGRADES_PER_ADDRESS_BURST": "100000",  # every socket from one address
           "MESSENGER_SEND_RATE_PER_S": "100000", "MESSENGER_SEND_BURST": "100000"}
    root = tmp_path_factory.mktemp("drain")
    draining = MessengerProcess(root / "a", {**env, "MESSENGER_DRAIN_WINDOW_S": str(WINDOW_S)})
    other = MessengerProcess(root / "b", env)
    for node in (draining, other):
        node.start()
    yield draining, other
    for node in (draining, other):
        node.stop()


async def test_sigterm_drains_every_socket_and_spreads_the_reconnects(
    nodes: tuple[MessengerProcess, MessengerProcess],
) -> None:
    node, other = nodes
    with node.client() as rest:
        accounts = [new_account(rest) for _ in range(ACCOUNTS)]
    gate = asyncio.Semaphore(50)

    async def opened(n: int) -> Client:
        async with gate:
            account = accounts[n % ACCOUNTS]
            return Client(account, await open_ws(node.ws_url, account))

    clients = await asyncio.gather(*(opened(n) for n in range(SOCKETS)))
    senders = [Sender(clients[n], accounts[(n + 1) % ACCOUNTS]) for n in range(SENDERS)]
    lives = [asyncio.create_task(live(c, other)) for c in clients]
    sending = [asyncio.create_task(keep_sending(s)) for s in senders]
    async with asyncio.timeout(30):  # every sender in full flow (first sends are slower)
        await asyncio.gather(*(s.client.flowing.wait() for s in senders))
    assert node.proc is not None
    node.proc.send_signal(signal.SIGTERM)
    sigterm_at = time.monotonic()
    exited = asyncio.create_task(exit_time(node))
    probing = asyncio.create_task(asyncio.to_thread(probe_while_draining, node, accounts[0],
                                                    sigterm_at))
    async with asyncio.timeout(60):
        await asyncio.gather(*lives)
        await asyncio.gather(*sending)
        lived_s = await exited - sigterm_at
        readiness = await probing
    assert WINDOW_S <= lived_s <= WINDOW_S + 8  # served out its window, then exited
    assert {status for _, status in readiness} == {503}
    assert readiness[-1][0] >= WINDOW_S / 2  # not ready, and still answering, in the window

    for client in clients:
        ops = [f["op"] for f in client.frames]
        assert ops.count("goaway") == 1, ops[-5:]  # then what was queued, then the close
        assert client.close_code == 1001
        goaway = next(f for f in client.frames if f["op"] == "goaway")
        assert 0 <= goaway["reconnect_after_ms"] <= WINDOW_S * 1000
        assert client.hello_at is not None  # reconnected to the other node

    tried = sorted(c.reconnect_at - sigterm_at for c in clients if c.reconnect_at is not None)
    arrived = sorted(c.hello_at - sigterm_at for c in clients if c.hello_at is not None)
    mean_per_bin = SOCKETS / WINDOW_S * BIN_S
    peak_tried, peak_arrived = peak_per_bin(tried), peak_per_bin(arrived)
    print(f"\nreconnects: {len(arrived)} over {arrived[-1] - arrived[0]:.2f} s; peak "
          f"{peak_arrived / BIN_S:.0f}/s arrived ({peak_tried / BIN_S:.0f}/s tried), mean "
          f"{SOCKETS / WINDOW_S:.0f}/s; node exited {lived_s:.2f} s after SIGTERM")
    assert tried[-1] - tried[0] >= 0.8 * WINDOW_S
    assert peak_tried <= 2 * mean_per_bin  # spread, not a wave

    answered_late = sum(1 for s in senders for f in after_goaway(s.client) if f["op"] == "sent")
    unanswered = sum(len(s.sent) - len(s.client.acked) for s in senders)
    print(f"sends: {sum(len(s.sent) for s in senders)}, answered after goaway "
          f"{answered_late}, unanswered {unanswered}")
    with other.client() as rest:
        for sender in senders:
            assert_nothing_lost(rest, sender)


async def live(client: Client, other: MessengerProcess) -> None:
    """Read until the node closes the socket, wait the ``goaway``'s delay, reconnect to the
    other node (and leave)."""
    try:
        async for text in client.ws:
            frame = json.loads(text)
            client.frames.append(frame)
            if frame["op"] == "sent":
                client.acked[frame["client_msg_id"]] = frame["msg_id"]
                if len(client.acked) >= 3:
                    client.flowing.set()
            elif frame["op"] == "goaway":
                client.told_to_go.set()
    except ConnectionClosed:
        pass
    client.close_code = client.ws.close_code
    client.told_to_go.set()
    goaway = next((f for f in client.frames if f["op"] == "goaway"), None)
    if goaway is None:  # without a drain: back at once, as after a 1012
        delay_s = 0.0
    else:
        delay_s = goaway["reconnect_after_ms"] / 1000
    await asyncio.sleep(delay_s)
    client.reconnect_at = time.monotonic()
    ws = await open_ws(other.ws_url, client.account)
    client.hello_at = time.monotonic()
    await ws.close()


async def keep_sending(sender: Sender) -> None:
    """Send to ``sender.to`` with up to ``SEND_WINDOW`` sends unanswered, until ``goaway``
    or the close (a client stops sending when told to go away)."""
    client = sender.client
    for n in itertools.count():
        while (len(sender.sent) - len(client.acked) >= SEND_WINDOW
               and not client.told_to_go.is_set()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.told_to_go.wait(), 0.01)
        if client.told_to_go.is_set():
            return
        key = f"{client.account.user_id}-{n}"
        try:
            await client.ws.send(json.dumps({"op": "send", "to_user": sender.to.user_id,
                                             "body": key, "client_msg_id": key}))
        except ConnectionClosed:
            return
        sender.sent.append(key)


def after_goaway(client: Client) -> list[dict[str, Any]]:
    """The frames that came after ``goaway``."""
    ops = [f["op"] for f in client.frames]
    return client.frames[ops.index("goaway") + 1:] if "goaway" in ops else []


def probe_while_draining(node: MessengerProcess, account: Account, sigterm_at: float
                         ) -> list[tuple[float, int]]:
    """Right after SIGTERM: upgrades get 503 ``draining`` with ``Retry-After`` and REST is
    still served; then ``/readyz`` until the node stops listening: when each answer came
    (seconds after SIGTERM) and its status. Runs in a thread, so that the test's busy event
    loop does not delay it."""
    with httpx.Client(base_url=node.url, timeout=5) as http:
        deadline = time.monotonic() + 1.0
        while (ready := http.get("/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "/readyz still 200 a second after SIGTERM"
            time.sleep(0.01)
        assert ready.json() == {"ready": False, "checks": {"node": "draining"}}
        with pytest.raises(InvalidStatus) as refused:
            connect_sync(node.ws_url, additional_headers=account.headers)
        response = refused.value.response
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
        assert json.loads(bytes(response.body or b""))["error"]["code"] == "draining"
        me = http.get("/v1/users/me", headers=account.headers)
        assert me.status_code == 200 and me.json()["user_id"] == account.user_id
        answers: list[tuple[float, int]] = []
        while True:
            try:
                status = http.get("/readyz").status_code
            except httpx.TransportError:  # no longer listening
                return answers
            answers.append((time.monotonic() - sigterm_at, status))
            time.sleep(0.05)


async def exit_time(node: MessengerProcess) -> float:
    """When the node's process exits (monotonic seconds)."""
    assert node.proc is not None
    await asyncio.to_thread(node.proc.wait, 60)
    return time.monotonic()


def peak_per_bin(times: list[float]) -> int:
    """The most of ``times`` that fall into one ``BIN_S`` bin."""
    return max(Counter(int(t // BIN_S) for t in times).values())


def assert_nothing_lost(rest: httpx.Client, sender: Sender) -> None:
    """Every acknowledged send is in the recipient's inbox with its acknowledged id; every
    send left unanswered, sent again with its ``client_msg_id``, is there exactly once."""
    acked = dict(sender.client.acked)
    for key in sender.sent:
        if key not in acked:
            retried = send(rest, sender.client.account, sender.to.user_id, key, key)
            assert retried.status_code in (200, 201), retried.text
            acked[key] = retried.json()["msg_id"]
    entries, _ = sync_all(rest, sender.to)
    mine = [e for e in entries if e["kind"] == "message"
            and e["sender_id"] == sender.client.account.user_id]
    bodies = Counter(e["body"] for e in mine)
    assert set(bodies) == set(sender.sent) and set(bodies.values()) == {1}
    assert {e["body"]: e["msg_id"] for e in mine} == acked


async def test_a_second_interrupt_stops_at_once_but_a_repeated_sigterm_does_not(
    tmp_path: Path,
) -> None:
    """Ctrl-C drains like SIGTERM; Ctrl-C again stops without waiting out the window. A
    SIGTERM repeated (a supervisor and uvicorn's parent both send one) changes nothing."""
    for repeat, window_s in ((signal.SIGINT, 30.0), (signal.SIGTERM, 3.0)):
        node = MessengerProcess(tmp_path / repeat.name, {"MESSENGER_DRAIN_WINDOW_S":
                                                         str(window_s)})
        node.start()
        try:
            with node.client() as rest:
                account = new_account(rest)
            ws = await open_ws(node.ws_url, account)
            assert node.proc is not None
            node.proc.send_signal(signal.SIGINT if repeat == signal.SIGINT else signal.SIGTERM)
            signalled = time.monotonic()
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "goaway"
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1001
            node.proc.send_signal(repeat)
            await asyncio.to_thread(node.proc.wait, window_s + 15)
            took = time.monotonic() - signalled
            if repeat == signal.SIGINT:
                assert took < 10  # not the 30 s window
            else:
                assert took >= window_s
        finally:
            node.stop()
