"""Send rate limits and typing frames over a real server (each backend) with small limits."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.api.server import (
    Account,
    MessengerProcess,
    login,
    messenger,
    new_account,
    send,
    sync_all,
)
from tests.api.wsclient import next_frame, open_ws

BURST = 5
LIMITS = {"MESSENGER_SEND_BURST": str(BURST), "MESSENGER_SEND_RATE_PER_S": "1",
          "MESSENGER_TYPING_INTERVAL_S": "1", "MESSENGER_HEARTBEAT_INTERVAL_MS": "2000"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, backend_env: dict[str, str]
            ) -> Iterator[MessengerProcess]:
    """A server that allows bursts of 5 sends per user and 1 more per second."""
    with messenger(tmp_path_factory.mktemp("limited"), {**LIMITS, **backend_env}) as proc:
        yield proc


@pytest.fixture
def client(limited: MessengerProcess) -> Iterator[httpx.Client]:
    with limited.client() as c:
        yield c


def _retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited" and r.json()["error"]["message"]
    seconds = int(r.headers["Retry-After"])
    assert 1 <= seconds <= 2
    return seconds


def test_sends_past_the_burst_get_429_with_retry_after(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    for n in range(BURST):
        assert send(client, alice, bob.user_id, f"m{n}").status_code == 201
    _retry_after(send(client, alice, bob.user_id, "one too many"))
    # Another user is not affected, whoever it writes to.
    assert send(client, bob, alice.user_id, "bob is fine").status_code == 201
    entries, _ = sync_all(client, bob)
    assert [e["body"] for e in entries] == [f"m{n}" for n in range(BURST)] + ["bob is fine"]


def test_limit_is_per_user_across_devices_and_a_waited_retry_passes(client: httpx.Client
                                                                     ) -> None:
    alice, bob = new_account(client), new_account(client)
    phone = login(client, alice.username)
    key = uuid.uuid4().hex
    first = send(client, alice, bob.user_id, "kept", key)
    assert first.status_code == 201
    for n in range(BURST - 1):
        assert send(client, phone, bob.user_id, f"p{n}").status_code == 201
    # Refused sends take no token, so refusing the same replay again costs nothing either.
    for _ in range(3):
        wait = _retry_after(send(client, phone, bob.user_id, "kept", key))
    time.sleep(wait)
    replay = send(client, phone, bob.user_id, "kept", key)
    assert replay.status_code == 200 and replay.json() == first.json()
    entries, _ = sync_all(client, bob)
    assert [e["body"] for e in entries].count("kept") == 1


def test_invalid_sends_cost_no_token(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    for _ in range(BURST + 2):
        r = client.post("/v1/messages", headers=alice.headers,
                        json={"to_user": bob.user_id, "body": "", "client_msg_id": "k"})
        assert r.status_code == 422, r.text
    for n in range(BURST):
        assert send(client, alice, bob.user_id, f"m{n}").status_code == 201


async def test_ws_send_shares_the_bucket_and_gets_a_rate_limited_frame(
    limited: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob = new_account(client), new_account(client)
    for n in range(BURST):
        assert send(client, alice, bob.user_id, f"m{n}").status_code == 201
    ws = await open_ws(limited.ws_url, alice)
    frame = {"op": "send", "to_user": bob.user_id, "body": "ws", "client_msg_id": "w1",
             "ref": "s1"}
    await ws.send(json.dumps(frame))
    error = await next_frame(ws, "error")
    assert (error["code"], error["ref"]) == ("rate_limited", "s1")
    assert 0 < error["retry_after_ms"] <= 1000 and error["message"]
    await asyncio.sleep(error["retry_after_ms"] / 1000)
    await ws.send(json.dumps({**frame, "ref": "s2"}))
    sent = await next_frame(ws, "sent")
    assert (sent["ref"], sent["client_msg_id"]) == ("s2", "w1")
    await ws.close()


async def _typing_frames(ws: ClientConnection, seconds: float) -> list[dict[str, object]]:
    """Every ``typing`` frame arriving within ``seconds`` (other frames, e.g. presence, are
    skipped)."""
    got: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
        if frame["op"] == "typing":
            got.append(frame)
    return got


def _direct(a: Account, b: Account) -> str:
    low, high = sorted((int(a.user_id), int(b.user_id)))
    return f"d:{low}:{high}"


async def test_typing_reaches_the_peers_devices_only_and_is_not_stored(
    limited: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob = new_account(client), new_account(client)
    alice_tab, bob_tab = login(client, alice.username), login(client, bob.username)
    sockets = [await open_ws(limited.ws_url, a) for a in (alice, alice_tab, bob, bob_tab)]
    cid = _direct(alice, bob)
    await sockets[0].send(json.dumps({"op": "typing", "conversation_id": cid, "ref": "t1"}))
    results = await asyncio.gather(*(_typing_frames(ws, 1.0) for ws in sockets))
    expected = {"op": "typing", "conversation_id": cid, "user_id": alice.user_id}
    assert results == [[], [], [expected], [expected]]  # not the sender's own other device
    assert sync_all(client, bob)[0] == [] and sync_all(client, alice)[0] == []
    for ws in sockets:
        await ws.close()


def _group(client: httpx.Client, owner: Account, *members: Account) -> str:
    """A new group's conversation id."""
    r = client.post("/v1/groups", json={"name": "typists",
                                        "member_ids": [m.user_id for m in members]},
                    headers=owner.headers)
    assert r.status_code == 201, r.text
    return f"g:{r.json()['group_id']}"


async def test_group_typing_reaches_every_other_member(limited: MessengerProcess,
                                                      client: httpx.Client) -> None:
    alice, bob, carol, dave = (new_account(client) for _ in range(4))
    cid = _group(client, alice, bob, carol)
    sockets = [await open_ws(limited.ws_url, a) for a in (alice, bob, carol, dave)]
    await sockets[1].send(json.dumps({"op": "typing", "conversation_id": cid}))
    results = await asyncio.gather(*(_typing_frames(ws, 1.0) for ws in sockets))
    expected = {"op": "typing", "conversation_id": cid, "user_id": bob.user_id}
    assert results == [[expected], [], [expected], []]
    await sockets[3].send(json.dumps({"op": "typing", "conversation_id": cid, "ref": "d"}))
    error = await next_frame(sockets[3], "error")
    assert (error["code"], error["ref"]) == ("forbidden", "d")
    for ws in sockets:
        await ws.close()


async def test_typing_within_the_interval_is_coalesced(limited: MessengerProcess,
                                                       client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    a, b = await open_ws(limited.ws_url, alice), await open_ws(limited.ws_url, bob)
    frame = json.dumps({"op": "typing", "conversation_id": _direct(alice, bob)})
    for _ in range(5):  # one per keystroke
        await a.send(frame)
    assert len(await _typing_frames(b, 0.8)) == 1
    await asyncio.sleep(0.3)  # the 1 s window has passed
    await a.send(frame)
    assert len(await _typing_frames(b, 1.0)) == 1
    await a.close()
    await b.close()


async def test_typing_by_outsiders_or_with_bad_ids_gets_error_frames(
    limited: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob, carol = new_account(client), new_account(client), new_account(client)
    ws, bob_ws = await open_ws(limited.ws_url, carol), await open_ws(limited.ws_url, bob)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"conversation_id": _direct(alice, bob)}, "forbidden"),
        ({"conversation_id": _direct(alice, bob)}, "forbidden"),  # refused again, not silenced
        ({"conversation_id": "d:1:x"}, "invalid_request"),
        ({"conversation_id": f"d:{int(carol.user_id) + 1}:{carol.user_id}"}, "not_found"),
        ({"conversation_id": 5}, "invalid_frame"),
        ({}, "invalid_frame"),
    ]
    for n, (fields, code) in enumerate(cases):
        await ws.send(json.dumps({"op": "typing", "ref": f"r{n}", **fields}))
        error = await next_frame(ws, "error")
        assert (error["code"], error["ref"]) == (code, f"r{n}"), fields
    assert await _typing_frames(bob_ws, 0.3) == []
    await ws.send(json.dumps({"op": "ping", "ref": "still-up"}))
    assert (await next_frame(ws, "pong"))["ref"] == "still-up"
    await ws.close()
    await bob_ws.close()
