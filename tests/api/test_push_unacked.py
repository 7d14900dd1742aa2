"""Live deliveries that are never acked get pushed: real servers, the real pyfcm client and a
local fake Google, real client processes frozen with SIGSTOP or killed with SIGKILL.

Invariant 7: a device that does not receive a message gets exactly one push attempt sequence
for it; a socket that looks online but never acks does not receive. The ack window and the
heartbeat are short here (``WINDOW_S``, 1 s heartbeats: a silent socket is dropped after 3 s),
or long where a test must tell the window from the socket's death (``LONG_WINDOW_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.api.backends import production_env, with_redis_db
from tests.api.server import Account, MessengerProcess, login, new_account, send
from tests.api.wsclient import collect_entries, next_frame, open_ws
from tests.push.fake_fcm import FakeFcm

WINDOW_S = 1.0
ACK_WINDOW_S = 3.0  # where a test acks in time: room for a busy machine
LONG_WINDOW_S = 60.0
HEARTBEAT_MS = 1000
DROPPED_S = 3 * HEARTBEAT_MS / 1000  # a silent socket is closed (4000) after this
WAIT_S = 15.0  # the longest a due push may take on a busy 2-core machine (returns at once)
QUIET_S = 1.5  # then this long for pushes that should not come

# A push that should not come would be due before the one a test then waits for, in another
# conversation (not collapsed with it): it would be queued first and arrive first. So tests
# check what did not happen at the end, once the expected push came.
UNACKED_REDIS_DB = 5

# A WebSocket client in its own OS process: pings twice per heartbeat interval, prints each
# entry it reads, and acks once, after its ``argv[3]``-th entry (0: never).
CLIENT = r"""
import json, sys, time
from websockets.sync.client import connect
ws = connect(sys.argv[1], additional_headers={"Authorization": "Bearer " + sys.argv[2]})
ack_after = int(sys.argv[3])
assert json.loads(ws.recv(timeout=5))["op"] == "hello"
print("ready", flush=True)
got, next_ping = 0, 0.0
while True:
    if time.monotonic() >= next_ping:
        ws.send('{"op": "ping"}')
        next_ping = time.monotonic() + 0.5
    try:
        frame = json.loads(ws.recv(timeout=0.1))
    except TimeoutError:
        continue
    for entry in frame.get("entries", []) if frame["op"] == "entries" else []:
        got += 1
        if got == ack_after:
            ws.send(json.dumps({"op": "ack", "cur_max_msg_id": entry["id"]}))
        print("entry", entry["id"], flush=True)
"""

Start = Callable[..., Awaitable[MessengerProcess]]


@contextlib.asynccontextmanager
async def starter(fcm: FakeFcm, tmp_path: Path, default_env: dict[str, str]
                  ) -> AsyncIterator[Start]:
    """``await start(window_s)``: a server pushing through the fake FCM with that ack window
    and 1 s heartbeats (``env``: its stores instead of ``default_env``, ``name``: its own
    data dir); all stopped at the end."""
    servers: list[MessengerProcess] = []
    credentials = fcm.write_service_account(tmp_path / "service-account.json")

    async def run(window_s: float, env: dict[str, str] | None = None, name: str = "data"
                  ) -> MessengerProcess:
        server = MessengerProcess(tmp_path / name, {
            "MESSENGER_FCM_CREDENTIALS": str(credentials),
            "MESSENGER_FCM_ENDPOINT": fcm.base_url,
            "MESSENGER_HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_MS),
            "MESSENGER_ACK_WINDOW_S": str(window_s),
            **with_redis_db(default_env if env is None else env, UNACKED_REDIS_DB)})
        await asyncio.to_thread(server.start)
        servers.append(server)
        return server

    try:
        yield run
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)


@pytest.fixture
async def start(fcm: FakeFcm, tmp_path: Path, backend_env: dict[str, str]
                ) -> AsyncIterator[Start]:
    """Servers on the backend under test."""
    async with starter(fcm, tmp_path, backend_env) as run:
        yield run


@pytest.fixture
async def start_production(fcm: FakeFcm, tmp_path: Path, redis_server: Any,
                           cassandra_server: Any) -> AsyncIterator[Start]:
    """Production nodes sharing Redis and one keyspace of Cassandra."""
    env = production_env(redis_server, cassandra_server, "unacked")
    async with starter(fcm, tmp_path, env) as run:
        yield run


@pytest.fixture
def client_process() -> Iterator[Callable[[MessengerProcess, Account, int],
                                          subprocess.Popen[str]]]:
    """``client_process(server, account, ack_after)``: the CLIENT, killed after the test."""
    procs: list[subprocess.Popen[str]] = []

    def run(server: MessengerProcess, account: Account, ack_after: int
            ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT, server.ws_url, account.token, str(ack_after)],
            stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield run
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def entries_read(proc: subprocess.Popen[str], count: int) -> list[str]:
    """The ids of the next ``count`` entries the client process printed."""
    assert proc.stdout is not None
    out = proc.stdout
    lines = [await asyncio.wait_for(asyncio.to_thread(out.readline), 10) for _ in range(count)]
    assert all(line.startswith("entry ") for line in lines), lines
    return [line.split()[1] for line in lines]


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def with_token(client: httpx.Client, account: Account) -> str:
    """Register a fresh FCM token for the account's device; the token."""
    token = f"token-{uuid.uuid4().hex}"
    r = await _call(client.put, f"/v1/devices/{account.device_id}/push",
                    json={"provider": "fcm", "token": token}, headers=account.headers)
    assert r.status_code == 204, r.text
    return token


async def sent(client: httpx.Client, sender: Account, to: Account, body: str
               ) -> dict[str, Any]:
    r = await _call(send, client, sender, to.user_id, body)
    assert r.status_code == 201, r.text
    receipt: dict[str, Any] = r.json()
    return receipt


def pushes_to(fcm: FakeFcm, token: str) -> list[dict[str, Any]]:
    return [r.body["message"] for r in fcm.requests if r.body["message"]["token"] == token]


async def pushed(fcm: FakeFcm, token: str, count: int, within_s: float
                 ) -> list[dict[str, Any]]:
    """The pushes to ``token`` once ``count`` arrived (or ``within_s`` passed)."""
    deadline = time.monotonic() + within_s
    for _ in range(int(within_s / 0.05) + 1):
        if len(pushes_to(fcm, token)) >= count or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    return pushes_to(fcm, token)


def bodies(pushes: list[dict[str, Any]]) -> list[str]:
    return [p["notification"]["body"] for p in pushes]


async def keep_alive(ws: ClientConnection) -> None:
    """Ping twice per heartbeat interval, never read: a socket that looks alive."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.send('{"op": "ping"}')
            await asyncio.sleep(HEARTBEAT_MS / 2000)


@contextlib.asynccontextmanager
async def pinging(server: MessengerProcess, account: Account) -> AsyncIterator[ClientConnection]:
    """A socket of ``account`` that keeps pinging until the block ends."""
    ws = await open_ws(server.ws_url, account)
    task = asyncio.create_task(keep_alive(ws))
    try:
        yield ws
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ws.close()


async def test_a_frozen_client_gets_one_push_once_the_ack_window_passes(
    start: Start, fcm: FakeFcm, client_process: Any
) -> None:
    server = await start(WINDOW_S)
    with server.client() as client:
        alice, bob = await _call(new_account, client), await _call(new_account, client)
        token = await with_token(client, bob)
        proc = client_process(server, bob, 0)
        proc.send_signal(signal.SIGSTOP)  # open but silent: it looks online
        await sent(client, alice, bob, "first")
        receipt = await sent(client, alice, bob, "second")
        pushes = await pushed(fcm, token, 1, WAIT_S)
        await asyncio.sleep(DROPPED_S + QUIET_S)  # its socket is dropped meanwhile
    assert bodies(pushes_to(fcm, token)) == ["second"]  # one per conversation, the newest
    assert pushes[0]["data"]["msg_id"] == receipt["msg_id"]
    assert pushes[0]["android"]["notification"]["notification_count"] == 2  # unread total
    assert pushes[0]["android"]["collapse_key"] == receipt["conversation_id"]


async def test_a_frozen_client_is_pushed_when_its_silent_socket_is_dropped(
    start: Start, fcm: FakeFcm, client_process: Any
) -> None:
    server = await start(LONG_WINDOW_S)  # the socket's death comes first
    with server.client() as client:
        alice, bob = await _call(new_account, client), await _call(new_account, client)
        token = await with_token(client, bob)
        proc = client_process(server, bob, 0)
        proc.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        await sent(client, alice, bob, "are you there?")
        await pushed(fcm, token, 1, DROPPED_S + WAIT_S)
        elapsed = time.monotonic() - frozen_at
        await asyncio.sleep(QUIET_S)
    assert bodies(pushes_to(fcm, token)) == ["are you there?"]
    # At the 4000 close (its last ping was at most 0.5 s before the freeze), long before the
    # window would have passed.
    assert DROPPED_S - 0.5 <= elapsed <= DROPPED_S + WAIT_S < LONG_WINDOW_S, elapsed


async def test_a_client_that_stops_reading_is_pushed_but_never_its_sender_or_a_mute(
    start: Start, fcm: FakeFcm
) -> None:
    server = await start(WINDOW_S)
    with server.client() as client:
        alice, bob, carol = [await _call(new_account, client) for _ in range(3)]
        alice_tablet = await _call(login, client, alice.username)
        bob_token, tablet_token = await with_token(client, bob), await with_token(
            client, alice_tablet)
        muted = await sent(client, carol, bob, "before the mute")  # bob is offline: pushed
        r = await _call(client.post, f"/v1/conversations/{muted['conversation_id']}/mute",
                        json={"until": None}, headers=bob.headers)
        assert r.status_code == 204
        assert bodies(await pushed(fcm, bob_token, 1, WAIT_S)) == ["before the mute"]
        async with pinging(server, bob), pinging(server, alice_tablet):
            await sent(client, carol, bob, "muted, not pushed")
            await sent(client, alice, bob, "unread by a live socket")  # tablet: own message
            await pushed(fcm, bob_token, 2, WAIT_S)
            await asyncio.sleep(QUIET_S)
    assert bodies(pushes_to(fcm, bob_token)) == ["before the mute", "unread by a live socket"]
    assert pushes_to(fcm, tablet_token) == []


async def test_an_ack_within_the_window_on_any_socket_or_over_rest_means_no_push(
    start: Start, fcm: FakeFcm
) -> None:
    server = await start(ACK_WINDOW_S)
    with server.client() as client:
        alice, bob, carol = [await _call(new_account, client) for _ in range(3)]
        token = await with_token(client, bob)
        async with pinging(server, bob) as ws, pinging(server, bob) as other:
            await sent(client, alice, bob, "acked late, still in time")
            [entry] = await collect_entries(ws, 1)
            await asyncio.sleep(ACK_WINDOW_S / 3)
            await other.send(json.dumps({"op": "ack", "cur_max_msg_id": entry["id"]}))
            await sent(client, alice, bob, "acked over REST")
            [entry] = await collect_entries(ws, 1)
            r = await _call(client.post, "/v1/sync/ack", json={"cur_max_msg_id": entry["id"]},
                            headers=bob.headers)
            assert r.status_code == 200, r.text
            await asyncio.sleep(ACK_WINDOW_S)
            await sent(client, carol, bob, "never acked")  # the watch is on: this one goes
            await pushed(fcm, token, 1, ACK_WINDOW_S + WAIT_S)
            await asyncio.sleep(QUIET_S)
    assert bodies(pushes_to(fcm, token)) == ["never acked"]


async def test_a_socket_killed_mid_burst_gets_one_push_per_conversation_it_had_not_acked(
    start: Start, fcm: FakeFcm, client_process: Any
) -> None:
    server = await start(LONG_WINDOW_S)  # pushes within seconds: the death, not the window
    with server.client() as client:
        alice, bob, carol = [await _call(new_account, client) for _ in range(3)]
        token = await with_token(client, bob)
        proc = client_process(server, bob, 2)  # acks its second entry
        await sent(client, alice, bob, "a1")
        await sent(client, carol, bob, "c1")
        await entries_read(proc, 2)
        for sender, body in ((alice, "a2"), (carol, "c2"), (alice, "a3")):
            await sent(client, sender, bob, body)
        await entries_read(proc, 3)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        pushes = await pushed(fcm, token, 2, WAIT_S)
        elapsed = time.monotonic() - killed_at
        for _ in range(100):  # offline now: later messages are pushed as they land
            devices = (await _call(client.get, "/v1/devices", headers=bob.headers)).json()
            if not devices[0]["online"]:
                break
            await asyncio.sleep(0.1)
        await sent(client, alice, bob, "a4")
        await pushed(fcm, token, 3, WAIT_S)
        await asyncio.sleep(QUIET_S)
    assert sorted(bodies(pushes)) == ["a3", "c2"], pushes
    assert elapsed < WAIT_S < LONG_WINDOW_S  # the socket's death, not the window
    assert bodies(pushes_to(fcm, token))[2:] == ["a4"]  # nothing twice, nothing acked
    assert {p["android"]["notification"]["notification_count"] for p in pushes} == {5}


async def test_a_backlog_replayed_by_sync_is_not_pushed(start: Start, fcm: FakeFcm) -> None:
    server = await start(WINDOW_S)
    with server.client() as client:
        alice, bob, carol = [await _call(new_account, client) for _ in range(3)]
        for n in range(3):  # while bob has no push token: no push for these
            await sent(client, carol, bob, f"backlog {n}")
        token = await with_token(client, bob)
        async with pinging(server, bob) as ws:
            await ws.send(json.dumps({"op": "sync", "cur_max_msg_id": "0"}))
            await next_frame(ws, "sync_started")
            assert len(await collect_entries(ws, 3)) == 3  # never acked
            await asyncio.sleep(WINDOW_S)
            await sent(client, alice, bob, "live")  # the watch is on: this one goes
            await pushed(fcm, token, 1, WAIT_S)
            await asyncio.sleep(QUIET_S)
    assert bodies(pushes_to(fcm, token)) == ["live"]


async def test_an_ack_taken_by_another_node_is_seen_before_pushing(
    start_production: Start, fcm: FakeFcm
) -> None:
    node_a = await start_production(ACK_WINDOW_S, name="node-a")
    node_b = await start_production(ACK_WINDOW_S, name="node-b")
    with node_a.client() as client, node_b.client() as client_b:
        alice, bob, carol = [await _call(new_account, client) for _ in range(3)]
        token = await with_token(client, bob)
        async with pinging(node_a, bob) as ws:
            await sent(client, alice, bob, "acked on node b")
            [entry] = await collect_entries(ws, 1)
            r = await _call(client_b.post, "/v1/sync/ack",
                            json={"cur_max_msg_id": entry["id"]}, headers=bob.headers)
            assert r.status_code == 200, r.text
            await asyncio.sleep(ACK_WINDOW_S)
            await sent(client, carol, bob, "not acked")
            await pushed(fcm, token, 1, ACK_WINDOW_S + WAIT_S)
            await asyncio.sleep(QUIET_S)
    assert bodies(pushes_to(fcm, token)) == ["not acked"]
