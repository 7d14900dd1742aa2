"""Presence over a real server (both backends; 1 s heartbeats, so a 1 s presence window).

Contacts see ``presence`` frames when a user comes online and goes offline (clean close,
kill -9 of the client process, a frozen client); flapping does not storm; strangers hear
nothing; ``GET /v1/presence`` agrees. Invariant 6: a device that vanishes without closing is
offline within 3 heartbeat intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.api.backends import production_env, with_redis_db
from tests.api.server import Account, MessengerProcess, login, new_account, send
from tests.api.wsclient import next_frame, open_ws

HEARTBEAT_S = 1.0  # MESSENGER_HEARTBEAT_INTERVAL_MS of the test server
INVARIANT_6_S = 3 * HEARTBEAT_S
SLACK_S = 0.5  # scheduling on a busy 2-core machine
PRESENCE_REDIS_DB = 6

# A WebSocket client in its own OS process: pings twice per heartbeat interval until killed.
CLIENT = r"""
import json, sys
from websockets.sync.client import connect
ws = connect(sys.argv[1], additional_headers={"Authorization": "Bearer " + sys.argv[2]})
assert json.loads(ws.recv(timeout=5))["op"] == "hello"
print("ready", flush=True)
while True:
    ws.send(json.dumps({"op": "ping"}))
    try:
        while True:
            ws.recv(timeout=0.5)
    except TimeoutError:
        pass
"""


def contacts(client: httpx.Client, a: Account, b: Account) -> None:
    """Make ``a`` and ``b`` contacts: a direct chat with one message."""
    assert send(client, a, b.user_id, "hello").status_code == 201


def create_group(client: httpx.Client, owner: Account, *members: Account) -> None:
    r = client.post("/v1/groups", json={"name": "team", "member_ids": [m.user_id for m in members]},
                    headers=owner.headers)
    assert r.status_code == 201, r.text


def presence_of(client: httpx.Client, viewer: Account, *users: Account) -> dict[str, Any]:
    r = client.get("/v1/presence", params={"user_ids": ",".join(u.user_id for u in users)},
                   headers=viewer.headers)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def presence_frame(ws: ClientConnection, user: Account, timeout: float = 5
                         ) -> dict[str, Any]:
    """The next ``presence`` frame about ``user``."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await next_frame(ws, "presence", timeout)
            if frame["user_id"] == user.user_id:
                return frame


async def frames_about(ws: ClientConnection, user: Account, seconds: float
                       ) -> list[dict[str, Any]]:
    """Every ``presence`` frame about ``user`` arriving within ``seconds``."""
    return [f for f in await any_presence(ws, seconds) if f["user_id"] == user.user_id]


Opener = Callable[[str, Account], Any]


async def any_presence(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Every ``presence`` frame, about anyone, arriving within ``seconds``."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                out.append(await next_frame(ws, "presence", seconds))
    return out


@pytest.fixture
async def opened() -> AsyncIterator[Opener]:
    """``await opened(ws_url, account)``: a socket that sends a frame every half heartbeat
    interval (so waiting for presence never trips the heartbeat timeout), closed after the
    test. The frame is an ``ack`` of cursor 0: it counts as activity and, unlike ``ping``,
    gets no reply, so sockets nobody reads do not fill their receive queue."""
    tasks: list[asyncio.Task[None]] = []
    sockets: list[ClientConnection] = []

    async def keep_alive(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(HEARTBEAT_S / 2)
                await ws.send('{"op":"ack","cur_max_msg_id":"0"}')

    async def open_kept_alive(ws_url: str, account: Account) -> ClientConnection:
        ws = await open_ws(ws_url, account)
        sockets.append(ws)
        tasks.append(asyncio.create_task(keep_alive(ws)))
        return ws

    yield open_kept_alive
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for ws in sockets:
        await ws.close()


@pytest.fixture
def client_process(server: MessengerProcess) -> Iterator[Any]:
    """``start(account)`` runs the WebSocket client in its own process; all are killed after."""
    procs: list[subprocess.Popen[str]] = []

    def start(account: Account) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", CLIENT, server.ws_url, account.token],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def test_contact_sees_online_then_offline_after_a_clean_close(
    server: MessengerProcess, client: httpx.Client, opened: Opener
) -> None:
    alice, bob = new_account(client), new_account(client)
    contacts(client, alice, bob)
    bob_ws = await opened(server.ws_url, bob)
    alice_ws = await opened(server.ws_url, alice)
    online = await presence_frame(bob_ws, alice)
    assert online["status"] == "online" and online["last_seen"].endswith("Z")
    assert presence_of(client, bob, alice)[alice.user_id]["status"] == "online"
    await alice_ws.close()
    closed_at = time.monotonic()
    offline = await presence_frame(bob_ws, alice)
    assert offline["status"] == "offline"
    assert time.monotonic() - closed_at <= INVARIANT_6_S
    seen = presence_of(client, bob, alice)[alice.user_id]
    assert seen == {"status": "offline", "last_seen": offline["last_seen"]}


async def test_group_members_are_contacts_and_strangers_hear_nothing(
    server: MessengerProcess, client: httpx.Client, opened: Opener
) -> None:
    alice, dave, carol = new_account(client), new_account(client), new_account(client)
    create_group(client, alice, dave)
    dave_ws = await opened(server.ws_url, dave)
    carol_ws = await opened(server.ws_url, carol)
    alice_ws = await opened(server.ws_url, alice)
    assert (await presence_frame(dave_ws, alice))["status"] == "online"
    await alice_ws.close()
    assert (await presence_frame(dave_ws, alice))["status"] == "offline"
    assert await any_presence(carol_ws, 0.5) == []  # the stranger heard nothing


async def test_a_second_device_keeps_the_user_online(
    server: MessengerProcess, client: httpx.Client, opened: Opener
) -> None:
    alice, bob = new_account(client), new_account(client)
    laptop = login(client, alice.username)
    contacts(client, alice, bob)
    bob_ws = await opened(server.ws_url, bob)
    phone_ws = await opened(server.ws_url, alice)
    laptop_ws = await opened(server.ws_url, laptop)
    assert [f["status"] for f in await frames_about(bob_ws, alice, 0.5)] == ["online"]
    await phone_ws.close()
    assert await frames_about(bob_ws, alice, 2 * HEARTBEAT_S) == []
    assert presence_of(client, bob, alice)[alice.user_id]["status"] == "online"
    await laptop_ws.close()
    assert (await presence_frame(bob_ws, alice))["status"] == "offline"


async def watch_a_client_process(server: MessengerProcess, client: httpx.Client,
                                 client_process: Any, opened: Opener
                                 ) -> tuple[Account, Account, ClientConnection, Any]:
    """Alice online from a client in its own process, watched live by her contact Bob:
    ``(alice, bob, bob's socket, alice's process)``."""
    alice, bob = new_account(client), new_account(client)
    contacts(client, alice, bob)
    bob_ws = await opened(server.ws_url, bob)
    proc = await asyncio.to_thread(client_process, alice)
    assert (await presence_frame(bob_ws, alice))["status"] == "online"
    return alice, bob, bob_ws, proc


async def test_invariant_6_kill_9_of_the_client_process_is_offline_in_3_heartbeats(
    server: MessengerProcess, client: httpx.Client, client_process: Any, opened: Opener
) -> None:
    alice, bob, bob_ws, proc = await watch_a_client_process(server, client, client_process,
                                                            opened)
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    offline = await presence_frame(bob_ws, alice, timeout=INVARIANT_6_S + SLACK_S)
    assert offline["status"] == "offline"
    assert time.monotonic() - killed_at <= INVARIANT_6_S + SLACK_S
    assert presence_of(client, bob, alice)[alice.user_id]["status"] == "offline"


async def test_invariant_6_a_frozen_client_is_offline_in_3_heartbeats(
    server: MessengerProcess, client: httpx.Client, client_process: Any, opened: Opener
) -> None:
    # SIGSTOP keeps the socket open but silent: only the heartbeat timeout can notice it.
    alice, bob, bob_ws, proc = await watch_a_client_process(server, client, client_process,
                                                            opened)
    await asyncio.sleep(HEARTBEAT_S)  # the socket stays up while the client pings
    assert presence_of(client, bob, alice)[alice.user_id]["status"] == "online"
    proc.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    offline = await presence_frame(bob_ws, alice, timeout=INVARIANT_6_S + 2)
    elapsed = time.monotonic() - frozen_at
    assert offline["status"] == "offline"
    assert INVARIANT_6_S - 0.6 <= elapsed <= INVARIANT_6_S + SLACK_S, elapsed
    assert presence_of(client, bob, alice)[alice.user_id]["status"] == "offline"


async def test_flapping_does_not_storm(server: MessengerProcess, client: httpx.Client,
                                       opened: Opener) -> None:
    alice, bob = new_account(client), new_account(client)
    contacts(client, alice, bob)
    bob_ws = await opened(server.ws_url, bob)
    for _ in range(10):  # connect / close / connect ... as fast as the handshake allows
        ws = await open_ws(server.ws_url, alice)
        await ws.close()
    alice_ws = await opened(server.ws_url, alice)
    frames = await frames_about(bob_ws, alice, 2 * HEARTBEAT_S)
    assert 1 <= len(frames) <= 2, frames  # online, at most once more per window
    assert frames[-1]["status"] == "online"
    await alice_ws.close()
    assert [f["status"] for f in await frames_about(bob_ws, alice, INVARIANT_6_S)] == ["offline"]


def test_presence_query_validation(client: httpx.Client) -> None:
    alice = new_account(client)
    r = client.get("/v1/presence", params={"user_ids": alice.user_id})
    assert r.status_code == 401
    for bad in ("", "abc", "1,,2", "-5", "1.5", ",".join(str(i) for i in range(1, 202))):
        r = client.get("/v1/presence", params={"user_ids": bad}, headers=alice.headers)
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "invalid_request"
    assert client.get("/v1/presence", headers=alice.headers).status_code == 422
    ids = f"{alice.user_id},123,{alice.user_id}"
    r = client.get("/v1/presence", params={"user_ids": ids}, headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == {alice.user_id: {"status": "offline", "last_seen": None},
                        "123": {"status": "offline", "last_seen": None}}


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory, redis_server: Any,
              cassandra_server: Any) -> Iterator[list[MessengerProcess]]:
    """Two production nodes sharing Redis + Cassandra, alone in their Redis database: a
    node of another test's cluster (another keyspace) must not be the one that sweeps up
    after the node this test kills."""
    env = {"MESSENGER_HEARTBEAT_INTERVAL_MS": "1000",
           **with_redis_db(production_env(redis_server, cassandra_server, "presence"),
                           PRESENCE_REDIS_DB)}
    root: Path = tmp_path_factory.mktemp("presence-nodes")
    nodes = [MessengerProcess(root / f"node{n}", env) for n in range(2)]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


async def test_invariant_6_users_of_a_node_killed_go_offline_in_3_heartbeats(
    two_nodes: list[MessengerProcess], opened: Opener
) -> None:
    doomed, survivor = two_nodes
    with survivor.client() as client:
        alice, bob = new_account(client), new_account(client)
        contacts(client, alice, bob)
        bob_ws = await opened(survivor.ws_url, bob)
        await opened(doomed.ws_url, alice)
        assert (await presence_frame(bob_ws, alice))["status"] == "online"  # across nodes
        assert presence_of(client, bob, alice)[alice.user_id]["status"] == "online"
        doomed.kill()  # kill -9: nothing unregisters alice's connection
        killed_at = time.monotonic()
        offline = await presence_frame(bob_ws, alice, timeout=INVARIANT_6_S + 2)
        assert offline["status"] == "offline"
        assert time.monotonic() - killed_at <= INVARIANT_6_S + SLACK_S
        seen = presence_of(client, bob, alice)[alice.user_id]
        assert seen["status"] == "offline" and seen["last_seen"] is not None
