"""Groups over a real server (both backends): create/get/add/remove/leave, the 100-member cap,
``group_event`` entries in inboxes, group sends over REST and WebSocket, group mutes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.api.server import Account, MessengerProcess, new_account, sync_all
from tests.api.wsclient import collect_entries, next_frame, open_ws


def _signup(server: MessengerProcess) -> str:
    """A user who never logs in (fills groups); its user id."""
    with server.client() as client:
        name = f"f{uuid.uuid4().hex[:12]}"
        r = client.post("/v1/auth/signup", json={"username": name, "password": "correct-horse"})
        assert r.status_code == 201, r.text
        user_id: str = r.json()["user_id"]
        return user_id


@pytest.fixture(scope="module")
def fillers(server: MessengerProcess) -> Iterator[list[str]]:
    """110 user ids, enough to fill a group past its cap."""
    with ThreadPoolExecutor(4) as pool:
        yield list(pool.map(lambda _: _signup(server), range(110)))


def create(client: httpx.Client, owner: Account, member_ids: Sequence[str | int],
           name: str = "team") -> httpx.Response:
    return client.post("/v1/groups", json={"name": name, "member_ids": list(member_ids)},
                       headers=owner.headers)


def add(client: httpx.Client, who: Account, group_id: str, user_ids: list[Any]
        ) -> httpx.Response:
    return client.post(f"/v1/groups/{group_id}/members", json={"user_ids": user_ids},
                       headers=who.headers)


def remove(client: httpx.Client, who: Account, group_id: str, user_id: str) -> httpx.Response:
    return client.delete(f"/v1/groups/{group_id}/members/{user_id}", headers=who.headers)


def send_group(client: httpx.Client, sender: Account, group_id: str, body: str
               ) -> httpx.Response:
    return client.post("/v1/messages", headers=sender.headers, json={
        "to_group": group_id, "body": body, "client_msg_id": uuid.uuid4().hex})


def group_events(client: httpx.Client, account: Account) -> list[dict[str, Any]]:
    entries, _ = sync_all(client, account)
    return [e["group"] for e in entries if e["kind"] == "group_event"]


def test_create_get_add_remove_and_leave(client: httpx.Client) -> None:
    alice, bob, carol, eve = (new_account(client) for _ in range(4))
    r = create(client, alice, [bob.user_id, int(bob.user_id)], name="  Hiking  ")
    assert r.status_code == 201, r.text
    group = r.json()
    assert group == {"group_id": group["group_id"], "name": "Hiking",
                     "owner_id": alice.user_id, "member_ids": [alice.user_id, bob.user_id]}
    gid = group["group_id"]
    assert isinstance(gid, str) and gid.isdigit()
    assert client.get(f"/v1/groups/{gid}", headers=bob.headers).json() == group
    denied = client.get(f"/v1/groups/{gid}", headers=eve.headers)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    assert client.get("/v1/groups/123456789", headers=alice.headers).status_code == 404
    assert client.get("/v1/groups/nope", headers=alice.headers).status_code == 422
    assert create(client, alice, [], name="   ").status_code == 422
    assert create(client, alice, ["99999999999"]).status_code == 404
    assert add(client, eve, gid, [eve.user_id]).status_code == 403

    r = add(client, bob, gid, [carol.user_id, alice.user_id])  # any member adds
    assert r.status_code == 200, r.text
    assert r.json()["member_ids"] == [alice.user_id, bob.user_id, carol.user_id]
    assert add(client, bob, gid, ["99999999999"]).status_code == 404
    assert remove(client, bob, gid, carol.user_id).status_code == 403  # not the owner
    assert remove(client, alice, gid, carol.user_id).status_code == 204  # the owner removes
    assert client.get(f"/v1/groups/{gid}", headers=carol.headers).status_code == 403
    assert remove(client, alice, gid, carol.user_id).status_code == 204  # a repeat: no-op
    assert add(client, alice, gid, [carol.user_id]).status_code == 200

    assert remove(client, alice, gid, alice.user_id).status_code == 204  # the owner leaves
    after = client.get(f"/v1/groups/{gid}", headers=bob.headers).json()
    assert after["owner_id"] == bob.user_id  # the longest-standing member
    assert after["member_ids"] == [bob.user_id, carol.user_id]
    assert remove(client, carol, gid, carol.user_id).status_code == 204  # a member leaves
    assert client.get(f"/v1/groups/{gid}", headers=bob.headers).json()["member_ids"] == [
        bob.user_id]


def test_membership_changes_land_in_inboxes_as_group_events(client: httpx.Client) -> None:
    alice, bob, carol = (new_account(client) for _ in range(3))
    gid = create(client, alice, [bob.user_id], name="events").json()["group_id"]
    add(client, bob, gid, [carol.user_id])
    assert remove(client, alice, gid, carol.user_id).status_code == 204
    members = [alice.user_id, bob.user_id]
    created = {"group_id": gid, "name": "events", "owner_id": alice.user_id,
               "member_ids": members, "event": "created", "user_ids": members}
    added = {**created, "member_ids": [*members, carol.user_id], "event": "members_added",
             "user_ids": [carol.user_id]}
    removed = {**created, "event": "member_removed", "user_ids": [carol.user_id]}
    assert group_events(client, alice) == [created, added, removed]
    assert group_events(client, bob) == [created, added, removed]
    assert group_events(client, carol) == [added, removed]  # the removed member hears it too
    entries, _ = sync_all(client, bob)
    for entry in entries:
        assert entry["conversation_id"] == f"g:{gid}" and entry["msg_id"].isdigit()
        assert "body" not in entry
    assert len({e["msg_id"] for e in entries}) == 3


async def test_group_send_reaches_every_member_by_sync_and_live(
    server: MessengerProcess, client: httpx.Client
) -> None:
    alice, bob, carol, eve = (new_account(client) for _ in range(4))
    gid = create(client, alice, [bob.user_id, carol.user_id]).json()["group_id"]
    bob_ws = await open_ws(server.ws_url, bob)
    carol_ws = await open_ws(server.ws_url, carol)
    r = await asyncio.to_thread(send_group, client, alice, gid, "hello group")
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["conversation_id"] == f"g:{gid}"
    for ws in (bob_ws, carol_ws):
        (live,) = await collect_entries(ws, 1)
        assert live["body"] == "hello group" and live["msg_id"] == receipt["msg_id"]
        assert live["sender_id"] == alice.user_id
    for member in (alice, bob, carol):
        entries, _ = sync_all(client, member)
        assert [e["body"] for e in entries if e["kind"] == "message"] == ["hello group"]
    assert sync_all(client, eve)[0] == []

    # The same over the WebSocket ``send`` frame.
    await carol_ws.send(json.dumps({"op": "send", "to_group": gid, "body": "from ws",
                                    "client_msg_id": "ws-1", "ref": "r1"}))
    sent = await next_frame(carol_ws, "sent")
    assert sent["conversation_id"] == f"g:{gid}" and sent.get("ref") == "r1"
    (live,) = await collect_entries(bob_ws, 1)
    assert live["body"] == "from ws" and live["sender_id"] == carol.user_id

    denied = await asyncio.to_thread(send_group, client, eve, gid, "let me in")
    assert denied.status_code == 403
    unknown = await asyncio.to_thread(send_group, client, alice, "123456789", "anyone?")
    assert unknown.status_code == 404
    await bob_ws.close()
    await carol_ws.close()


def test_the_101st_member_is_refused_and_nothing_changes(
    client: httpx.Client, fillers: list[str]
) -> None:
    owner = new_account(client)
    full = create(client, owner, fillers[:100])  # 101 with the creator
    assert full.status_code == 409 and full.json()["error"]["code"] == "group_full"
    r = create(client, owner, fillers[:98])
    assert r.status_code == 201 and len(r.json()["member_ids"]) == 99
    gid = r.json()["group_id"]
    two = add(client, owner, gid, fillers[98:100])  # one seat left, two ids: all or nothing
    assert two.status_code == 409 and two.json()["error"]["code"] == "group_full"
    assert len(client.get(f"/v1/groups/{gid}", headers=owner.headers).json()["member_ids"]) == 99
    assert add(client, owner, gid, fillers[98:99]).status_code == 200
    over = add(client, owner, gid, fillers[99:100])
    assert over.status_code == 409 and over.json()["error"]["code"] == "group_full"
    assert add(client, owner, gid, fillers[:5]).status_code == 200  # all in already: fine
    group = client.get(f"/v1/groups/{gid}", headers=owner.headers).json()
    assert group["member_ids"] == [owner.user_id, *fillers[:99]]


def test_concurrent_adds_never_make_101(server: MessengerProcess, fillers: list[str]) -> None:
    """Invariant 4 through the API: 12 adds race for 4 seats."""
    with server.client() as client:
        owner = new_account(client)
        gid = create(client, owner, fillers[:95]).json()["group_id"]

    def one(user_id: str) -> int:
        with server.client() as c:
            return add(c, owner, gid, [user_id]).status_code

    racers = fillers[95:107]
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(one, racers))
    assert sorted(codes) == [200] * 4 + [409] * 8
    with server.client() as client:
        group = client.get(f"/v1/groups/{gid}", headers=owner.headers).json()
    won = {uid for uid, code in zip(racers, codes, strict=True) if code == 200}
    assert len(group["member_ids"]) == 100
    assert set(group["member_ids"]) == {owner.user_id, *fillers[:95], *won}


def test_mute_a_group_conversation(client: httpx.Client) -> None:
    alice, bob, eve = (new_account(client) for _ in range(3))
    gid = create(client, alice, [bob.user_id]).json()["group_id"]

    def mute(who: Account, cid: str) -> int:
        return client.post(f"/v1/conversations/{cid}/mute", json={"until": None},
                           headers=who.headers).status_code

    assert mute(bob, f"g:{gid}") == 204
    assert mute(eve, f"g:{gid}") == 403
    assert mute(alice, "g:123456789") == 404
    assert mute(alice, "g:x") == 422


def test_a_repeated_client_group_id_answers_the_same_group(client: httpx.Client) -> None:
    owner, bob = new_account(client), new_account(client)
    body = {"name": "retry", "member_ids": [bob.user_id], "client_group_id": "new-group-1"}
    first = client.post("/v1/groups", json=body, headers=owner.headers)
    again = client.post("/v1/groups", json=body, headers=owner.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert [g["event"] for g in group_events(client, bob)] == ["created"]  # told once
    other = client.post("/v1/groups", json={**body, "client_group_id": "new-group-2"},
                        headers=owner.headers)
    assert other.status_code == 201 and other.json()["group_id"] != first.json()["group_id"]
    too_long = client.post("/v1/groups", json={**body, "client_group_id": "k" * 129},
                           headers=owner.headers)
    assert too_long.status_code == 422
