"""Guarantees 1 and 3 of docs/architecture.md end to end, and a restart that keeps every message."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.api.server import (
    MessengerProcess,
    messenger,
    new_account,
    send,
    sync_all,
    sync_until_done,
)
from tests.api.wsclient import collect_entries, open_ws

SENDERS = 8
PER_SENDER = 40


def test_invariant_1_no_gap_no_duplicate_under_concurrent_senders(
    server: MessengerProcess, client: httpx.Client
) -> None:
    """Many concurrent senders; a device syncing in pages of 3 sees every entry once, in order."""
    inbox_owner = new_account(client)
    senders = [new_account(client) for _ in range(SENDERS)]
    done = threading.Event()
    seen: list[dict[str, Any]] = []

    def sender_loop(account_index: int) -> None:
        with server.client() as c:
            for i in range(PER_SENDER):
                r = send(c, senders[account_index], inbox_owner.user_id, f"{account_index}:{i}")
                assert r.status_code == 201, r.text

    sync_thread = threading.Thread(target=sync_until_done,
                                   args=(server, inbox_owner, done, seen, 3))
    sync_thread.start()
    threads = [threading.Thread(target=sender_loop, args=(k,)) for k in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    sync_thread.join(60)
    ids = [int(str(e["id"])) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "out of order or duplicated"
    bodies = [str(e["body"]) for e in seen]
    assert sorted(bodies) == sorted(f"{k}:{i}" for k in range(SENDERS) for i in range(PER_SENDER))
    for k in range(SENDERS):  # each sender's messages in its own send order
        mine = [b for b in bodies if str(b).startswith(f"{k}:")]
        assert mine == [f"{k}:{i}" for i in range(PER_SENDER)]
    # A fresh full sync agrees with what the pager saw.
    again, _ = sync_all(client, inbox_owner)
    assert [e["id"] for e in again] == [e["id"] for e in seen]


async def test_invariant_1_live_stream_matches_the_inbox(
    server: MessengerProcess, client: httpx.Client
) -> None:
    """The live WebSocket stream under concurrent senders equals a later full sync."""
    owner = new_account(client)
    senders = [new_account(client) for _ in range(4)]
    ws = await open_ws(server.ws_url, owner)
    await ws.send(json.dumps({"op": "sync", "cur_max_msg_id": "0"}))

    def burst(account_index: int) -> None:
        with server.client() as c:
            for i in range(25):
                assert send(c, senders[account_index], owner.user_id, f"{i}").status_code == 201

    await asyncio.gather(*(asyncio.to_thread(burst, k) for k in range(4)))
    live = await collect_entries(ws, 100)
    full, _ = await asyncio.to_thread(sync_all, client, owner)
    assert [e["id"] for e in live] == [e["id"] for e in full]
    await ws.close()


def test_invariant_3_concurrent_retries_create_one_message(
    server: MessengerProcess, client: httpx.Client
) -> None:
    """The same client_msg_id sent 10 times at once: one message, one receipt for all."""
    alice, bob = new_account(client), new_account(client)
    key = uuid.uuid4().hex
    results: list[httpx.Response] = []

    def retry() -> None:
        with server.client() as c:
            results.append(send(c, alice, bob.user_id, "exactly once", key))

    threads = [threading.Thread(target=retry) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] * 9 + [201]
    assert len({r.json()["msg_id"] for r in results}) == 1
    for account in (alice, bob):
        entries, _ = sync_all(client, account)
        assert [e["body"] for e in entries] == ["exactly once"]


def test_restart_keeps_every_message_and_cursor(tmp_path: Path, backend_env: dict[str, str]
                                                ) -> None:
    with messenger(tmp_path, backend_env) as server:
        with server.client() as c:
            alice, bob = new_account(c), new_account(c)
            receipts = [send(c, alice, bob.user_id, f"m{i}", f"key{i}").json() for i in range(20)]
            _, cursor = sync_all(c, bob, limit=7)
            c.post("/v1/sync/ack", json={"cur_max_msg_id": cursor}, headers=bob.headers)
        server.kill()  # kill -9: no clean shutdown
        server.start()
        with server.client() as c:
            entries, _ = sync_all(c, bob)
            assert [e["msg_id"] for e in entries] == [r["msg_id"] for r in receipts]
            devices = c.get("/v1/devices", headers=bob.headers).json()
            assert devices[0]["cur_max_msg_id"] == cursor
            after = send(c, alice, bob.user_id, "after restart")
            assert after.status_code == 201
            assert int(after.json()["msg_id"]) > int(receipts[-1]["msg_id"])
            new, _ = sync_all(c, bob, cursor)
            assert [e["body"] for e in new] == ["after restart"]
            replay = send(c, alice, bob.user_id, "m0 again", "key0")  # invariant 3 survives too
            assert replay.status_code == 200 and replay.json() == receipts[0]
        server.stop()
        server.start()
        with server.client() as c:
            entries, _ = sync_all(c, bob)
            assert len(entries) == 21
