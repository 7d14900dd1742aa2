"""Multi-device over a real server: every device of a user gets live entries, ``GET
/v1/devices`` reports which are online (from the live bus, any node) and when each was last
seen, and logging one device out closes only its sockets and revokes only its token."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.api.server import Account, MessengerProcess, login, new_account, send
from tests.api.wsclient import collect_entries, next_frame, open_ws


def devices_of(client: httpx.Client, account: Account) -> dict[str, dict[str, Any]]:
    r = client.get("/v1/devices", headers=account.headers)
    assert r.status_code == 200, r.text
    return {d["device_id"]: d for d in r.json()}


async def until_device(client: httpx.Client, account: Account, device_id: str, online: bool
                       ) -> dict[str, Any]:
    """Poll ``GET /v1/devices`` until the device reports ``online`` (the close is async)."""
    async with asyncio.timeout(5):
        while True:
            device = (await asyncio.to_thread(devices_of, client, account))[device_id]
            if device["online"] is online:
                return device
            await asyncio.sleep(0.05)


def me_status(client: httpx.Client, account: Account) -> int:
    """Whether the account's token still works: ``GET /v1/users/me``'s status."""
    return client.get("/v1/users/me", headers=account.headers).status_code


def parse_time(value: str) -> datetime:
    assert value.endswith("Z") and len(value) == len("2025-01-01T00:00:00.123Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_every_device_gets_live_entries_and_reports_online(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob = new_account(client), new_account(client)
    laptop = login(client, alice.username, platform="desktop")
    tablet = login(client, alice.username, platform="ios")  # logged in, never connected
    phone_ws = await open_ws(server.ws_url, alice)
    laptop_ws = await open_ws(server.ws_url, laptop)
    listed = devices_of(client, alice)  # a socket that got hello is registered already
    assert listed[alice.device_id]["online"] is True
    assert listed[laptop.device_id]["online"] is True
    assert listed[tablet.device_id]["online"] is False
    assert listed[tablet.device_id]["last_seen"] is None
    parse_time(listed[laptop.device_id]["last_seen"])

    receipt = (await asyncio.to_thread(send, client, bob, alice.user_id, "to both")).json()
    (on_phone,) = await collect_entries(phone_ws, 1)
    (on_laptop,) = await collect_entries(laptop_ws, 1)
    assert on_phone == on_laptop
    assert on_phone["msg_id"] == receipt["msg_id"] and on_phone["body"] == "to both"

    await laptop_ws.close()
    laptop_listed = await until_device(client, alice, laptop.device_id, online=False)
    assert devices_of(client, alice)[alice.device_id]["online"] is True
    left = parse_time(laptop_listed["last_seen"])
    assert left <= parse_time(devices_of(client, alice)[alice.device_id]["last_seen"])
    await phone_ws.close()


async def test_logging_one_device_out_closes_only_its_sockets(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob = new_account(client), new_account(client)
    laptop = login(client, alice.username)
    phone_ws = await open_ws(server.ws_url, alice)
    laptop_ws = await open_ws(server.ws_url, laptop)
    laptop_ws2 = await open_ws(server.ws_url, laptop, query_token=True)  # a second tab
    r = await asyncio.to_thread(client.delete, f"/v1/devices/{laptop.device_id}",
                                headers=alice.headers)
    assert r.status_code == 204
    for ws in (laptop_ws, laptop_ws2):
        assert (await next_frame(ws, "error"))["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001
    assert me_status(client, laptop) == 401
    assert me_status(client, alice) == 200
    assert list(devices_of(client, alice)) == [alice.device_id]

    await asyncio.to_thread(send, client, bob, alice.user_id, "still here?")
    (entry,) = await collect_entries(phone_ws, 1)
    assert entry["body"] == "still here?"
    await phone_ws.close()


def test_another_users_device_cannot_be_logged_out(client: httpx.Client) -> None:
    alice, mallory = new_account(client), new_account(client)
    r = client.delete(f"/v1/devices/{alice.device_id}", headers=mallory.headers)
    assert r.status_code == 403
    assert client.delete("/v1/devices/123", headers=mallory.headers).status_code == 404
    assert me_status(client, alice) == 200
