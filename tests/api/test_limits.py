"""Send rate limits and typing frames over a real server (each backend) with small limits.

Refusals are tested on a server whose bucket refills once in 50 s, so however slow a send
is, none refills the bucket before the test expects a refusal; waiting out ``Retry-After``
is tested on a second server that refills every second, after sending until refused.
Coalescing of ``typing`` is timed precisely in ``tests/gateway/test_typing_relay.py`` (with
an injected clock); over the wire its window is a minute, far beyond any test's run time.
"""

from __future__ import annotations

import asyncio
import json
import math
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
SLOW_RATE = 0.02  # one token per 50 s: a refusal expected in a test is never refilled away
FAST_RATE = 1.0
LIMITS = {"MESSENGER_SEND_BURST": str(BURST), "MESSENGER_SEND_RATE_PER_S": str(SLOW_RATE),
          "MESSENGER_TYPING_INTERVAL_S": "60", "MESSENGER_HEARTBEAT_INTERVAL_MS": "2000"}
FAST_LIMITS = {"MESSENGER_SEND_BURST": "2", "MESSENGER_SEND_RATE_PER_S": str(FAST_RATE)}
MAX_SENDS_UNTIL_REFUSED = 30
"""Sends tried before giving up on draining the fast bucket (it takes 3 unless each send
takes about a second)."""


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, backend_env: dict[str, str]
            ) -> Iterator[MessengerProcess]:
    """A server that allows bursts of 5 sends per user and 1 more per 50 s."""
    with messenger(tmp_path_factory.mktemp("limited"), {**LIMITS, **backend_env}) as proc:
        yield proc


@pytest.fixture(scope="module")
def refilling(tmp_path_factory: pytest.TempPathFactory, backend_env: dict[str, str]
              ) -> Iterator[MessengerProcess]:
    """A server that allows bursts of 2 sends per user and 1 more per second."""
    with messenger(tmp_path_factory.mktemp("refilling"), {**FAST_LIMITS, **backend_env}
                   ) as proc:
        yield proc


@pytest.fixture
def client(limited: MessengerProcess) -> Iterator[httpx.Client]:
    with limited.client() as c:
        yield c


def _retry_after(r: httpx.Response, rate: float = SLOW_RATE) -> int:
    """The 429's ``Retry-After``: whole seconds, at most the time one token takes."""
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited" and r.json()["error"]["message"]
    seconds = int(r.headers["Retry-After"])
    assert 1 <= seconds <= math.ceil(1 / rate)
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


def test_limit_is_per_user_across_devices_and_refusals_cost_nothing(client: httpx.Client
                                                                     ) -> None:
    alice, bob = new_account(client), new_account(client)
    phone = login(client, alice.username)
    key = uuid.uuid4().hex
    assert send(client, alice, bob.user_id, "kept", key).status_code == 201
    for n in range(BURST - 1):
        assert send(client, phone, bob.user_id, f"p{n}").status_code == 201
    # Refused sends take no token, so refusing the same replay again costs nothing either:
    # the wait stays within one token's time (a charged refusal would push it further out).
    for _ in range(3):
        _retry_after(send(client, phone, bob.user_id, "kept", key))
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
    assert 0 < error["retry_after_ms"] <= 1000 / SLOW_RATE and error["message"]
    await ws.send(json.dumps({"op": "ping", "ref": "p"}))  # the socket stays up
    assert (await next_frame(ws, "pong"))["ref"] == "p"
    await ws.close()
    assert "ws" not in [e["body"] for e in sync_all(client, bob)[0]]


def test_a_retry_after_retry_after_passes_and_replays_the_original(refilling: MessengerProcess
                                                                    ) -> None:
    with refilling.client() as c:
        alice, bob = new_account(c), new_account(c)
        key = uuid.uuid4().hex
        first = send(c, alice, bob.user_id, "kept", key)
        assert first.status_code == 201
        for _ in range(MAX_SENDS_UNTIL_REFUSED):
            refused = send(c, alice, bob.user_id, "kept", key)
            if refused.status_code == 429:
                break
            assert refused.status_code == 200 and refused.json() == first.json()
        wait = _retry_after(refused, FAST_RATE)
        time.sleep(wait)  # the server's own clock refills the bucket: nothing to inject
        replay = send(c, alice, bob.user_id, "kept", key)
        assert replay.status_code == 200 and replay.json() == first.json()
        assert [e["body"] for e in sync_all(c, bob)[0]] == ["kept"]


async def _reply(ws: ClientConnection) -> dict[str, Any]:
    """The next ``sent`` or ``error`` frame (the sender's own entries stream by meanwhile)."""
    while (frame := await next_frame(ws, timeout=10))["op"] not in ("sent", "error"):
        pass
    return frame


async def test_a_ws_send_after_retry_after_ms_passes(refilling: MessengerProcess) -> None:
    with refilling.client() as c:
        alice, bob = new_account(c), new_account(c)
        ws = await open_ws(refilling.ws_url, alice)
        for n in range(MAX_SENDS_UNTIL_REFUSED):
            await ws.send(json.dumps({"op": "send", "to_user": bob.user_id, "body": f"m{n}",
                                      "client_msg_id": f"w{n}", "ref": f"s{n}"}))
            reply = await _reply(ws)
            if reply["op"] == "error":
                break
        assert reply["op"] == "error", "the bucket never ran dry"
        assert (reply["code"], reply["ref"]) == ("rate_limited", f"s{n}")
        assert 0 < reply["retry_after_ms"] <= 1000 / FAST_RATE
        await asyncio.sleep(reply["retry_after_ms"] / 1000)  # the server's clock refills
        await ws.send(json.dumps({"op": "send", "to_user": bob.user_id, "body": f"m{n}",
                                  "client_msg_id": f"w{n}", "ref": "again"}))
        sent = await next_frame(ws, "sent", timeout=10)
        assert (sent["ref"], sent["client_msg_id"]) == ("again", f"w{n}")
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


async def test_typing_keystrokes_are_coalesced(limited: MessengerProcess,
                                              client: httpx.Client) -> None:
    """Smoke test over the wire (the window is a minute): a burst of keystrokes reaches the
    peer once. Alice then types in a group with Bob: that frame, relayed after the burst,
    marks where the burst's frames would have been, so no waiting for silence is needed."""
    alice, bob = new_account(client), new_account(client)
    group = _group(client, alice, bob)
    a, b = await open_ws(limited.ws_url, alice), await open_ws(limited.ws_url, bob)
    direct = _direct(alice, bob)
    for _ in range(5):  # one per keystroke
        await a.send(json.dumps({"op": "typing", "conversation_id": direct}))
    await a.send(json.dumps({"op": "typing", "conversation_id": group}))
    got = [await next_frame(b, "typing", timeout=10)]
    while got[-1]["conversation_id"] != group:
        got.append(await next_frame(b, "typing", timeout=10))
    assert [f["conversation_id"] for f in got] == [direct, group]
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
