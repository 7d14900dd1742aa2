"""How the client's socket layer reacts to each way a socket ends and to heartbeats, against
a scripted gateway (see ``scripted.py``): goaway, 4000, 1013, 4001, refused upgrades, a
silent server, and the client's own pings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from messenger_client import Client, CredentialsError, Disconnected, NotFound, Profile, Session
from tests.messenger_client.scripted import Gateway, close_with, mute, serve_normally
from tests.messenger_client.support import FAST, Inbox, eventually


def client_for(gw: Gateway, tmp_path: Path) -> Client:
    profile = Profile(tmp_path / "p.db")
    profile.save_session(Session(gw.url, "alice", 1, 2, "token"))
    profile.close()
    return Client(tmp_path / "p.db", backoff=FAST, open_timeout_s=2, rng=lambda: 0.999)


@contextlib.asynccontextmanager
async def running(gw: Gateway, tmp_path: Path) -> AsyncIterator[Inbox]:
    """A client on the scripted gateway, with its events collected."""
    async with client_for(gw, tmp_path) as client:
        inbox = Inbox(client)
        yield inbox
        await inbox.stop()


async def disconnects(gw: Gateway, tmp_path: Path, count: int) -> list[Disconnected]:
    async with running(gw, tmp_path) as inbox:
        await inbox.wait(lambda box: len(box.of(Disconnected)) >= count, timeout=10)
        found: list[Disconnected] = inbox.of(Disconnected)[:count]
        return found


async def connections(gw: Gateway, count: int) -> None:
    await eventually(lambda: len(gw.connected_at) >= count)


async def test_goaway_is_honoured(tmp_path: Path) -> None:
    async with Gateway([close_with(1001, goaway_ms=400), serve_normally]) as gw, \
            running(gw, tmp_path) as inbox:
        await connections(gw, 2)
        (gone,) = inbox.of(Disconnected)
        assert (gone.code, gone.reconnect_after_ms) == (1001, 400)
        assert gone.retry_in_s >= 0.4
        assert gw.connected_at[1] - gw.connected_at[0] >= 0.4


async def test_4000_reconnects_at_once_and_1013_backs_off_more_each_time(tmp_path: Path) -> None:
    scenes = [close_with(4000), close_with(4000), close_with(1013, "unavailable"),
              close_with(1013), close_with(1013), serve_normally]
    async with Gateway(scenes) as gw:
        ends = await disconnects(gw, tmp_path, 5)
    assert [d.code for d in ends] == [4000, 4000, 1013, 1013, 1013]
    delays = [d.retry_in_s for d in ends]
    assert delays == pytest.approx([0.05, 0.05, 0.05, 0.1, 0.2], rel=0.01)


async def test_4001_stops_the_client_with_the_servers_code(tmp_path: Path) -> None:
    async with Gateway([close_with(4001, "token_expired"), serve_normally]) as gw:
        async with client_for(gw, tmp_path) as client:
            inbox = Inbox(client)
            with pytest.raises(CredentialsError) as info:
                await inbox.wait(lambda box: False)
            assert info.value.code == "token_expired"
            await asyncio.sleep(0.3)
        assert len(gw.connected_at) == 1  # no reconnect


@pytest.mark.parametrize(("status", "code", "error"), [
    (401, "invalid_token", CredentialsError), (404, "not_found", NotFound)])
async def test_a_refused_upgrade_that_a_retry_cannot_fix_stops_the_client(
        tmp_path: Path, status: int, code: str, error: type[Exception]) -> None:
    async with Gateway([serve_normally]) as gw:
        gw.refuse_with = (status, code)
        async with client_for(gw, tmp_path) as client:
            with pytest.raises(error) as info:
                await Inbox(client).wait(lambda box: False)
            assert getattr(info.value, "code", None) == code


async def test_the_client_pings_each_interval_and_drops_a_silent_server(tmp_path: Path) -> None:
    async with Gateway([mute, serve_normally], heartbeat_interval_ms=200) as gw, \
            running(gw, tmp_path) as inbox:
        await connections(gw, 2)
        (silent,) = inbox.of(Disconnected)
        assert silent.code is None and "silent" in silent.reason
        assert gw.connected_at[1] - gw.connected_at[0] == pytest.approx(0.6, abs=0.2)
        pings_before = sum(f["op"] == "ping" for f in gw.received)
        assert pings_before >= 3
        await asyncio.sleep(1.0)
        pings = sum(f["op"] == "ping" for f in gw.received) - pings_before
        assert 4 <= pings <= 6  # one per 200 ms on the healthy socket
        assert len(inbox.of(Disconnected)) == 1
