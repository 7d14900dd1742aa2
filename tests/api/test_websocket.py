"""The WebSocket gateway over a real socket: auth, live entries, sync, send, errors, heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from tests.api.server import MessengerProcess, login, messenger, new_account, send, sync_all
from tests.api.wsclient import collect_entries, next_frame, open_ws, silent_for


async def test_bad_token_refuses_the_upgrade(server: MessengerProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        with pytest.raises(InvalidStatus) as info:
            await connect(server.ws_url, additional_headers=headers)
        assert info.value.response.status_code == 401


def _bearer_subprotocols(token: str) -> list[Subprotocol]:
    """What a browser offers: ``new WebSocket(url, ["messenger.v1", "bearer." + token])``."""
    return [Subprotocol("messenger.v1"), Subprotocol(f"bearer.{token}")]


async def test_the_token_can_ride_in_the_subprotocol(server: MessengerProcess,
                                                     client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    ws = await connect(server.ws_url, subprotocols=_bearer_subprotocols(alice.token))
    assert ws.subprotocol == "messenger.v1"  # the server never echoes the token
    assert ws.response is not None
    assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == ["messenger.v1"]
    assert (await next_frame(ws))["op"] == "hello"
    await asyncio.to_thread(send, client, bob, alice.user_id, "to the browser")
    (entry,) = await collect_entries(ws, 1)  # the socket is alice's
    assert entry["body"] == "to the browser"
    await ws.close()
    # A header-authenticated client offering the subprotocol gets it too.
    ws = await connect(server.ws_url, additional_headers=alice.headers,
                       subprotocols=[Subprotocol("messenger.v1")])
    assert ws.subprotocol == "messenger.v1"
    await ws.close()


async def test_a_bad_subprotocol_token_is_refused_like_a_bad_header(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice = new_account(client)
    forged = alice.token[:-4] + ("AAAA" if not alice.token.endswith("AAAA") else "BBBB")
    for offered, status, code in (
        (_bearer_subprotocols("nope"), 401, "invalid_token"),
        (_bearer_subprotocols(forged), 401, "invalid_token"),
        ([Subprotocol(f"bearer.{alice.token}")], 400, "invalid_subprotocol"),
    ):
        with pytest.raises(InvalidStatus) as info:
            await connect(server.ws_url, subprotocols=offered)
        response = info.value.response
        assert response.status_code == status
        assert json.loads(response.body)["error"]["code"] == code
        assert alice.token not in response.body.decode()


async def test_a_browser_is_told_why_its_upgrade_was_refused(
    server: MessengerProcess, client: httpx.Client
) -> None:
    """A browser sees no HTTP status of a refused handshake (only a 1006 close): an upgrade
    with an ``Origin`` is accepted, told why in an ``error`` frame and closed with a code it
    can act on (4001: log in again)."""
    origin = Origin(server.url)
    for kwargs in ({"subprotocols": _bearer_subprotocols("nope")},
                   {"additional_headers": {"Authorization": "Bearer nope"}}):
        ws = await connect(server.ws_url, origin=origin, **kwargs)
        if "subprotocols" in kwargs:
            assert ws.subprotocol == "messenger.v1"  # a browser needs one it offered
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["op"] == "error" and frame["code"] == "invalid_token"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001


async def test_live_entries_reach_recipient_and_senders_other_devices(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob = new_account(client), new_account(client)
    alice_laptop = login(client, alice.username)
    bob_ws = await open_ws(server.ws_url, bob)
    laptop_ws = await open_ws(server.ws_url, alice_laptop, query_token=True)
    receipt = (await asyncio.to_thread(send, client, alice, bob.user_id, "live!")).json()
    (to_bob,) = await collect_entries(bob_ws, 1)
    (to_laptop,) = await collect_entries(laptop_ws, 1)
    assert to_bob["body"] == to_laptop["body"] == "live!"
    assert to_bob["msg_id"] == to_laptop["msg_id"] == receipt["msg_id"]
    assert to_laptop["id"] == receipt["id"]
    await bob_ws.close()
    await laptop_ws.close()


async def test_sync_frame_replays_then_streams_without_gap_or_duplicate(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob = new_account(client), new_account(client)
    for i in range(7):
        await asyncio.to_thread(send, client, alice, bob.user_id, f"old{i}")
    ws = await open_ws(server.ws_url, bob)
    await ws.send(json.dumps({"op": "sync", "cur_max_msg_id": "0"}))
    replayed = await collect_entries(ws, 7)
    for i in range(3):
        await asyncio.to_thread(send, client, alice, bob.user_id, f"new{i}")
    live = await collect_entries(ws, 3)
    bodies = [e["body"] for e in replayed + live]
    assert bodies == [f"old{i}" for i in range(7)] + [f"new{i}" for i in range(3)]
    assert await silent_for(ws, 0.3)
    await ws.close()


async def test_sync_is_answered_with_sync_started_between_stale_live_and_replayed_entries(
    server: MessengerProcess, client: httpx.Client
) -> None:
    """An entry streamed live before the server read ``sync`` comes before ``sync_started``
    and again in the replay after it: a client that keeps only what follows the marker gets
    every entry once, in order (one keeping the early live entry would skip the older ones)."""
    alice, bob = new_account(client), new_account(client)
    for i in range(3):
        await asyncio.to_thread(send, client, alice, bob.user_id, f"old{i}")
    ws = await open_ws(server.ws_url, bob)
    await asyncio.to_thread(send, client, alice, bob.user_id, "early")
    (early,) = await collect_entries(ws, 1)  # live, ahead of the three older entries
    await ws.send(json.dumps({"op": "sync", "cur_max_msg_id": "0", "ref": "s1"}))
    marker = await next_frame(ws)
    assert marker == {"op": "sync_started", "cur_max_msg_id": "0", "ref": "s1"}
    replayed = await collect_entries(ws, 4)
    assert [e["body"] for e in replayed] == ["old0", "old1", "old2", "early"]
    assert replayed[-1] == early
    await ws.close()


async def test_send_frame_answers_sent_and_is_idempotent(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob = new_account(client), new_account(client)
    ws = await open_ws(server.ws_url, alice)
    frame = {"op": "send", "to_user": bob.user_id, "body": "via ws", "client_msg_id": "c1",
             "ref": "r1"}
    await ws.send(json.dumps(frame))
    sent = await next_frame(ws, "sent")
    assert sent["ref"] == "r1" and sent["client_msg_id"] == "c1"
    await ws.send(json.dumps({**frame, "ref": "r2"}))
    again = await next_frame(ws, "sent")
    assert again["msg_id"] == sent["msg_id"] and again["ref"] == "r2"
    entries, _ = await asyncio.to_thread(sync_all, client, bob)
    assert [e["body"] for e in entries] == ["via ws"]
    await ws.send(json.dumps({**frame, "body": "", "client_msg_id": "c2", "ref": "r3"}))
    error = await next_frame(ws, "error")
    assert error["code"] == "invalid_request" and error["ref"] == "r3"
    await ws.close()


def _append_calls(client: httpx.Client) -> float:
    """How many times the server has called its inbox store's ``append_many`` so far."""
    for line in client.get("/metrics").text.splitlines():
        if (line.startswith("messenger_store_operation_seconds_count{")
                and 'store="inbox"' in line and 'operation="append_many"' in line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_socket_s_sends_are_pipelined_stored_in_order_and_answered_in_order(
    server: MessengerProcess, client: httpx.Client
) -> None:
    """The socket reads on while its sends are stored: sends sent back to back are stored
    several per store call (so fewer calls than sends), in the order they were sent."""
    alice, bob = new_account(client), new_account(client)
    ws = await open_ws(server.ws_url, alice)
    before = _append_calls(client)
    count = 40
    for n in range(count):
        await ws.send(json.dumps({"op": "send", "to_user": bob.user_id, "body": f"m{n}",
                                  "client_msg_id": f"p{n}", "ref": f"r{n}"}))
    answers = [await next_frame(ws, "sent") for _ in range(count)]
    await ws.close()
    assert [a["ref"] for a in answers] == [f"r{n}" for n in range(count)]
    entries, _ = sync_all(client, bob)
    assert [e["body"] for e in entries] == [f"m{n}" for n in range(count)]
    assert [e["msg_id"] for e in entries] == [a["msg_id"] for a in answers]
    assert _append_calls(client) - before < count


async def test_compression_is_negotiated_without_state_kept_between_messages(
    server: MessengerProcess, client: httpx.Client
) -> None:
    """Deflate stays available, but an idle socket holds no zlib state: no context takeover
    either way (see api/ws_protocol.py)."""
    alice, bob = new_account(client), new_account(client)
    ws = await open_ws(server.ws_url, alice)  # the websockets client offers deflate
    assert ws.response is not None
    agreed = ws.response.headers["Sec-WebSocket-Extensions"]
    assert "permessage-deflate" in agreed
    assert "server_no_context_takeover" in agreed and "client_no_context_takeover" in agreed
    body = "compressible " * 500
    assert send(client, bob, alice.user_id, body).status_code == 201
    (entry,) = await collect_entries(ws, 1)
    assert entry["body"] == body
    await ws.close()


async def test_bad_frames_get_error_frames_and_the_socket_stays(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice = new_account(client)
    ws = await open_ws(server.ws_url, alice)
    cases = [
        ("{not json", "invalid_json"),
        ("[1,2]", "invalid_frame"),
        (json.dumps({"no": "op"}), "invalid_frame"),
        (json.dumps({"op": "fly", "ref": "x"}), "unknown_op"),
        (json.dumps({"op": "sync", "cur_max_msg_id": "abc"}), "invalid_request"),
        (json.dumps({"op": "sync"}), "invalid_frame"),
    ]
    for text, code in cases:
        await ws.send(text)
        assert (await next_frame(ws, "error"))["code"] == code, text
    await ws.send(b"\x00binary")
    assert (await next_frame(ws, "error"))["code"] == "invalid_frame"
    await ws.send(json.dumps({"op": "ping", "ref": "p"}))
    assert await next_frame(ws) == {"op": "pong", "ref": "p"}
    await ws.close()


async def test_silent_client_is_disconnected_after_three_intervals(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice = new_account(client)
    ws = await open_ws(server.ws_url, alice)  # server heartbeat interval is 1 s in tests
    started = asyncio.get_running_loop().time()
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    elapsed = asyncio.get_running_loop().time() - started
    assert 2.5 <= elapsed <= 6, elapsed
    assert ws.close_code == 4000


async def test_pings_keep_a_client_alive(server: MessengerProcess, client: httpx.Client) -> None:
    alice = new_account(client)
    ws = await open_ws(server.ws_url, alice)
    for _ in range(8):  # 4 s > 3 intervals
        await ws.send(json.dumps({"op": "ping"}))
        await next_frame(ws, "pong")
        await asyncio.sleep(0.5)
    await ws.close()


async def test_logout_closes_the_devices_sockets_with_4001(
    server: MessengerProcess, client: httpx.Client
) -> None:
    phone = new_account(client)
    laptop = login(client, phone.username)
    ws = await open_ws(server.ws_url, laptop)
    r = await asyncio.to_thread(
        client.delete, f"/v1/devices/{laptop.device_id}", headers=phone.headers
    )
    assert r.status_code == 204
    assert (await next_frame(ws, "error"))["code"] == "unauthorized"
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4001


async def test_a_stalled_reader_does_not_slow_others(tmp_path: Path,
                                                     backend_env: dict[str, str]) -> None:
    # The queue-full disconnect itself is tested in tests/gateway/test_connection.py: kernel and
    # transport buffers on loopback absorb many megabytes before a server queue could fill.
    # 400 sends at once from one user: past the default send burst, so this server's is larger.
    # The stalled device pings but never reads, so it stays connected and backlogged throughout:
    # a server that waited on its socket would stop delivering to the fast device (6 MB is more
    # than loopback buffers hold; random bodies, as per-message deflate shrinks repeated text
    # to nothing). Lag is measured per message, not as a wall-clock total,
    # because how fast a loaded machine stores 400 sends says nothing about the stalled reader.
    env = {"MESSENGER_WS_QUEUE_SIZE": "64", "MESSENGER_SEND_BURST": "1000", **backend_env}
    n = 400
    with messenger(tmp_path, env) as server, server.client() as client:
        alice, bob = new_account(client), new_account(client)
        bob_fast = login(client, bob.username)
        async with contextlib.AsyncExitStack() as sockets:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            stalled = await connect(server.ws_url, sock=sock, additional_headers=bob.headers,
                                    max_queue=1, close_timeout=1)
            sockets.push_async_callback(stalled.close)
            fast = await open_ws(server.ws_url, bob_fast)
            sockets.push_async_callback(fast.close)
            sender = await open_ws(server.ws_url, alice)
            sockets.push_async_callback(sender.close)
            keep_alive = asyncio.create_task(ping_forever(stalled, every_s=0.5))
            sockets.callback(keep_alive.cancel)
            for i in range(n):
                await sender.send(json.dumps({"op": "send", "to_user": bob.user_id,
                                              "body": secrets.token_urlsafe(12000),
                                              "client_msg_id": f"k{i}"}))
            acked, delivered = await asyncio.gather(arrivals(sender, "sent", n),
                                                    arrivals(fast, "entries", n))
    assert list(delivered) == sorted(delivered, key=int) and len(delivered) == n
    assert set(delivered) == set(acked)
    lag = max(delivered[i] - acked[i] for i in acked)
    assert lag < 5, f"an entry reached the fast device {lag:.1f} s after its send was answered"


async def ping_forever(ws: ClientConnection, every_s: float) -> None:
    """Keep ``ws`` alive by the protocol's pings without ever reading from it."""
    while True:
        await ws.send(json.dumps({"op": "ping"}))
        await asyncio.sleep(every_s)


async def arrivals(ws: ClientConnection, op: str, count: int) -> dict[str, float]:
    """``msg_id`` -> loop time of arrival, for ``count`` messages carried by ``op`` frames
    (by ``msg_id``: an entry's ``id`` is its position in one inbox, and the sender's and the
    recipient's positions for one message may differ)."""
    loop = asyncio.get_running_loop()
    seen: dict[str, float] = {}
    while len(seen) < count:
        frame = await next_frame(ws, op, timeout=30)
        for item in frame["entries"] if op == "entries" else [frame]:
            seen[item["msg_id"]] = loop.time()
    return seen


async def test_an_open_socket_ends_when_its_token_expires(tmp_path: Path) -> None:
    env = {"MESSENGER_TOKEN_TTL_S": "2", "MESSENGER_HEARTBEAT_INTERVAL_MS": "1000"}
    with messenger(tmp_path, env) as server, server.client() as client:
        alice = new_account(client)
        ws = await open_ws(server.ws_url, alice)
        await ws.send(json.dumps({"op": "ping"}))  # alive, so only the expiry can end it
        assert (await next_frame(ws, "error", timeout=5))["code"] == "token_expired"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001
