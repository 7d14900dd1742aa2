"""The client through failures, against a real embedded server of its own: the server killed
with -9 and restarted on the same port and data, the client's network cut or blackholed, a
sync racing live entries, the client restarted. Nothing lost, nothing twice, outbox drained."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from messenger_client import Disconnected, Entry, RestApi
from tests.api.server import MessengerProcess
from tests.messenger_client.proxy import TcpProxy
from tests.messenger_client.support import (
    HEARTBEAT_ENV,
    Inbox,
    assert_in_order_once,
    eventually,
    open_client,
    signup,
)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessengerProcess]:
    """One embedded server for the tests that leave it running."""
    server = MessengerProcess(tmp_path_factory.mktemp("shared") / "data", HEARTBEAT_ENV)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[MessengerProcess]:
    """A server of the test's own, to kill or restart."""
    server = MessengerProcess(tmp_path / "data", HEARTBEAT_ENV)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def proxy(embedded: MessengerProcess) -> AsyncIterator[TcpProxy]:
    relay = TcpProxy(embedded.port)
    await relay.start()
    yield relay
    await relay.stop()


async def test_server_killed_and_restarted_mid_session(own_server: MessengerProcess,
                                                       tmp_path: Path) -> None:
    alice_path = await signup(own_server.url, tmp_path, "a")
    bob_path = await signup(own_server.url, tmp_path, "b")
    async with open_client(alice_path) as alice, open_client(bob_path) as bob:
        alice_inbox, bob_inbox = Inbox(alice), Inbox(bob)
        a, b = alice.session.user_id, bob.session.user_id
        for i in range(20):
            alice.enqueue(f"m{i}", to_user=b)
        await bob_inbox.wait(lambda box: len(box.bodies(a)) >= 10)
        own_server.kill()  # while alice's outbox is still sending
        for i in range(20, 40):
            alice.enqueue(f"m{i}", to_user=b)
        for i in range(5):
            bob.enqueue(f"r{i}", to_user=a)
        await asyncio.sleep(1.0)  # both keep retrying against a dead port
        await asyncio.to_thread(own_server.start)
        for i in range(40, 60):
            alice.enqueue(f"m{i}", to_user=b)
        await alice.flush()
        await bob.flush()
        await bob_inbox.wait(lambda box: len(box.bodies()) == 65)
        await alice_inbox.wait(lambda box: len(box.bodies()) == 65)
        for inbox in (alice_inbox, bob_inbox):
            assert_in_order_once(inbox.entries)
            assert inbox.bodies(a) == [f"m{i}" for i in range(60)]
            assert inbox.bodies(b) == [f"r{i}" for i in range(5)]
            assert inbox.of(Disconnected)
        assert not alice.pending() and not bob.pending()
        stored = await bob.api.sync(0, 1000)  # the server stored each message once
        assert sorted(e.body or "" for e in stored.entries) == sorted(bob_inbox.bodies())
        await alice_inbox.stop()
        await bob_inbox.stop()


@pytest.mark.parametrize("failure", ["cut", "blackhole"])
async def test_client_network_dropped_and_restored(embedded: MessengerProcess, proxy: TcpProxy,
                                                   tmp_path: Path, failure: str) -> None:
    """Bob's link goes through the proxy: reset (the client sees the close) or blackholed
    (only missing pongs tell; reconnects time out until the network is back)."""
    alice_path = await signup(embedded.url, tmp_path, "a")
    bob_path = await signup(proxy.url, tmp_path, "b")
    async with open_client(alice_path) as alice, open_client(bob_path) as bob:
        alice_inbox, bob_inbox = Inbox(alice), Inbox(bob)
        a, b = alice.session.user_id, bob.session.user_id
        for i in range(10):
            await alice.send(f"m{i}", to_user=b)
        await bob_inbox.wait(lambda box: len(box.bodies()) == 10)
        proxy.cut() if failure == "cut" else proxy.blackhole()
        for i in range(10, 20):
            await alice.send(f"m{i}", to_user=b)
        for i in range(5):
            bob.enqueue(f"r{i}", to_user=a)
        await bob_inbox.wait(lambda box: bool(box.of(Disconnected)))  # noticed on its own
        proxy.restore()
        await bob.flush()
        await bob_inbox.wait(lambda box: len(box.bodies()) == 25)
        await alice_inbox.wait(lambda box: len(box.bodies(b)) == 5)
        assert bob_inbox.bodies(a) == [f"m{i}" for i in range(20)]
        assert bob_inbox.bodies(b) == alice_inbox.bodies(b) == [f"r{i}" for i in range(5)]
        assert_in_order_once(bob_inbox.entries)
        if failure == "blackhole":
            assert "silent" in bob_inbox.of(Disconnected)[0].reason
        await alice_inbox.stop()
        await bob_inbox.stop()


async def test_live_entries_that_race_the_sync_do_not_jump_the_replay(
        embedded: MessengerProcess, proxy: TcpProxy, tmp_path: Path) -> None:
    """Bob reconnects behind three entries while his uplink is slow: an entry that lands
    before the server reads his ``sync`` is streamed live ahead of the replay; the client
    still hands all four over in inbox order."""
    alice_path = await signup(embedded.url, tmp_path, "a")
    bob_path = await signup(proxy.url, tmp_path, "b")
    async with open_client(alice_path) as alice, open_client(bob_path) as bob:
        bob_inbox = Inbox(bob)
        b = bob.session.user_id
        await eventually(lambda: bob.connected)
        proxy.cut()
        for i in range(3):
            await alice.send(f"old{i}", to_user=b)
        proxy.upstream_delay_s = 0.8
        connections = proxy.connections
        proxy.restore()
        async with RestApi(embedded.url, bob.session.token) as direct:
            async def registered() -> bool:
                return proxy.connections > connections and any(
                    d.online for d in await direct.devices())
            await eventually(registered)  # hello sent; bob's sync is still on the slow uplink
        await alice.send("early", to_user=b)
        await bob_inbox.wait(lambda box: len(box.bodies()) == 4)
        assert bob_inbox.bodies() == ["old0", "old1", "old2", "early"]
        await bob_inbox.stop()


async def test_a_restarted_client_resumes_from_its_cursor_and_outbox(
        embedded: MessengerProcess, tmp_path: Path) -> None:
    alice_path = await signup(embedded.url, tmp_path, "a")
    bob_path = await signup(embedded.url, tmp_path, "b")
    async with open_client(alice_path) as alice:
        alice_inbox = Inbox(alice)
        a = alice.session.user_id
        bob = open_client(bob_path)
        b = bob.session.user_id
        for i in range(10):
            await alice.send(f"m{i}", to_user=b)
        async with bob:
            handled: list[Entry] = []
            async for event in bob.events():
                if isinstance(event, Entry):
                    handled.append(event)
                    if len(handled) == 4:
                        bob.commit(event)
                        break  # the app stops after its 4th entry
        for i in range(10, 15):
            await alice.send(f"m{i}", to_user=b)
        offline = open_client(bob_path)  # not started: its sends wait in the profile
        for i in range(3):
            offline.enqueue(f"r{i}", to_user=a)
        await offline.aclose()
        async with open_client(bob_path) as bob_again:
            assert bob_again.cursor == handled[-1].id
            again = Inbox(bob_again)
            await bob_again.flush()
            await again.wait(lambda box: len(box.bodies(a)) == 11 and len(box.bodies(b)) == 3)
            assert again.bodies(a) == [f"m{i}" for i in range(4, 15)]
            assert_in_order_once(handled + again.entries)
            await again.stop()
        await alice_inbox.wait(lambda box: box.bodies(b) == ["r0", "r1", "r2"])
        await alice_inbox.stop()


async def test_a_graceful_server_restart_loses_nothing(own_server: MessengerProcess,
                                                      tmp_path: Path) -> None:
    path = await signup(own_server.url, tmp_path, "a")
    async with open_client(path) as client:
        inbox = Inbox(client)
        me = client.session.user_id
        await client.send("before", to_user=me)
        await asyncio.to_thread(own_server.stop)
        await inbox.wait(lambda box: bool(box.of(Disconnected)))
        await asyncio.to_thread(own_server.start)
        await client.send("after", to_user=me)
        await inbox.wait(lambda box: box.bodies() == ["before", "after"])
        await inbox.stop()
