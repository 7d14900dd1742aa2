"""The client through failures, against a real embedded server of its own: the server killed
with -9 and restarted on the same port and data, the client's network cut or blackholed, a
sync racing live entries, the client restarted. Nothing lost, nothing twice, outbox drained."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from messenger_client import Disconnected, Entry, RestApi
from tests.api.server import MessengerProcess
from tests.messenger_client.proxy import TcpProxy
from tests.messenger_client.support import (
    Inbox,
    assert_in_order_once,
    chat,
    eventually,
    open_client,
    signup,
)


@pytest.fixture
async def proxy(embedded: MessengerProcess) -> AsyncIterator[TcpProxy]:
    relay = TcpProxy(embedded.port)
    await relay.start()
    yield relay
    await relay.stop()


async def test_server_killed_and_restarted_mid_session(own_server: MessengerProcess,
                                                       tmp_path: Path) -> None:
    async with chat(tmp_path, own_server.url) as c:
        for i in range(20):
            c.alice.enqueue(f"m{i}", to_user=c.b)
        await c.bob_inbox.wait(lambda box: len(box.bodies(c.a)) >= 10)
        own_server.kill()  # while alice's outbox is still sending
        for i in range(20, 40):
            c.alice.enqueue(f"m{i}", to_user=c.b)
        for i in range(5):
            c.bob.enqueue(f"r{i}", to_user=c.a)
        await asyncio.sleep(1.0)  # both keep retrying against a dead port
        await asyncio.to_thread(own_server.start)
        for i in range(40, 60):
            c.alice.enqueue(f"m{i}", to_user=c.b)
        await c.alice.flush()
        await c.bob.flush()
        for inbox in (c.alice_inbox, c.bob_inbox):
            await inbox.wait(lambda box: len(box.bodies()) == 65)
            assert_in_order_once(inbox.entries)
            assert inbox.bodies(c.a) == [f"m{i}" for i in range(60)]
            assert inbox.bodies(c.b) == [f"r{i}" for i in range(5)]
            assert inbox.of(Disconnected)
        assert not c.alice.pending() and not c.bob.pending()
        stored = await c.bob.api.sync(0, 1000)  # the server stored each message once
        assert sorted(e.body or "" for e in stored.entries) == sorted(c.bob_inbox.bodies())


@pytest.mark.parametrize("failure", ["cut", "blackhole"])
async def test_client_network_dropped_and_restored(embedded: MessengerProcess, proxy: TcpProxy,
                                                   tmp_path: Path, failure: str) -> None:
    """Bob's link goes through the proxy: reset (the client sees the close) or blackholed
    (only missing pongs tell; reconnects time out until the network is back)."""
    async with chat(tmp_path, embedded.url, proxy.url) as c:
        for i in range(10):
            await c.alice.send(f"m{i}", to_user=c.b)
        await c.bob_inbox.wait(lambda box: len(box.bodies()) == 10)
        proxy.cut() if failure == "cut" else proxy.blackhole()
        for i in range(10, 20):
            await c.alice.send(f"m{i}", to_user=c.b)
        for i in range(5):
            c.bob.enqueue(f"r{i}", to_user=c.a)
        await c.bob_inbox.wait(lambda box: bool(box.of(Disconnected)))  # noticed on its own
        proxy.restore()
        await c.bob.flush()
        await c.bob_inbox.wait(lambda box: len(box.bodies()) == 25)
        await c.alice_inbox.wait(lambda box: len(box.bodies(c.b)) == 5)
        assert c.bob_inbox.bodies(c.a) == [f"m{i}" for i in range(20)]
        assert c.bob_inbox.bodies(c.b) == c.alice_inbox.bodies(c.b) == [f"r{i}" for i in range(5)]
        assert_in_order_once(c.bob_inbox.entries)
        if failure == "blackhole":
            assert "silent" in c.bob_inbox.of(Disconnected)[0].reason


async def test_live_entries_that_race_the_sync_do_not_jump_the_replay(
        embedded: MessengerProcess, proxy: TcpProxy, tmp_path: Path) -> None:
    """Bob reconnects behind three entries while his uplink is slow: an entry that lands
    before the server reads his ``sync`` is streamed live ahead of the replay; the client
    still hands all four over in inbox order."""
    async with chat(tmp_path, embedded.url, proxy.url) as c:
        await eventually(lambda: c.bob.connected)
        proxy.cut()
        for i in range(3):
            await c.alice.send(f"old{i}", to_user=c.b)
        proxy.upstream_delay_s = 0.8
        connections = proxy.connections
        proxy.restore()
        async with RestApi(embedded.url, c.bob.session.token) as direct:
            async def registered() -> bool:
                return proxy.connections > connections and any(
                    d.online for d in await direct.devices())
            await eventually(registered)  # hello sent; bob's sync is still on the slow uplink
        await c.alice.send("early", to_user=c.b)
        await c.bob_inbox.wait(lambda box: len(box.bodies()) == 4)
        assert c.bob_inbox.bodies() == ["old0", "old1", "old2", "early"]


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


async def test_closing_at_any_moment_of_connecting_stops_the_client(
        embedded: MessengerProcess, tmp_path: Path) -> None:
    """``aclose`` ends the client whenever it comes, even as ``hello`` arrives. A cancellation
    lost in that instant (Python 3.11's ``wait_for`` drops one when the awaited call finishes
    at the same moment) left a send-only client running for ever: ``messenger send`` hung."""
    profile = await signup(embedded.url, tmp_path)
    started = time.monotonic()
    async with open_client(profile, receive=False) as client:
        await eventually(lambda: client.connected)
    connect_s = time.monotonic() - started
    for step in range(100):
        client = open_client(profile, receive=False)
        client.start()
        await asyncio.sleep(connect_s * step / 80)  # sweeps the whole connect, then past it
        async with asyncio.timeout(5):
            await client.aclose()
