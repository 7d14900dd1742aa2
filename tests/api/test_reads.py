"""Read receipts, unread counts, the conversation list, history and deletes over a real server
(both backends). The 24 h limit of delete-for-everyone is tested at service level
(tests/inbox/test_conversation_services.py), where the clock can be driven."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.api.server import Account, MessengerProcess, login, new_account, send, sync_all
from tests.api.wsclient import collect_entries, next_frame, open_ws


def _send(client: httpx.Client, sender: Account, to: Account, body: str) -> str:
    r = send(client, sender, to.user_id, body)
    assert r.status_code == 201, r.text
    msg_id: str = r.json()["msg_id"]
    return msg_id


def _direct(a: Account, b: Account) -> str:
    low, high = sorted((int(a.user_id), int(b.user_id)))
    return f"d:{low}:{high}"


def _list(client: httpx.Client, who: Account) -> list[dict[str, Any]]:
    r = client.get("/v1/conversations", headers=who.headers)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


def _unread(client: httpx.Client, who: Account) -> dict[str, int]:
    return {row["conversation_id"]: row["unread"] for row in _list(client, who)}


def _read(client: httpx.Client, who: Account, cid: str, up_to: str) -> httpx.Response:
    return client.post(f"/v1/conversations/{cid}/read", json={"up_to_msg_id": up_to},
                       headers=who.headers)


def _history(client: httpx.Client, who: Account, cid: str, **params: Any) -> httpx.Response:
    return client.get(f"/v1/conversations/{cid}/messages", params=params, headers=who.headers)


def _delete(client: httpx.Client, who: Account, msg_id: str, scope: str | None = None
            ) -> httpx.Response:
    params = {"scope": scope} if scope is not None else {}
    return client.delete(f"/v1/messages/{msg_id}", params=params, headers=who.headers)


def _entries(client: httpx.Client, who: Account, kind: str) -> list[dict[str, Any]]:
    return [e for e in sync_all(client, who)[0] if e["kind"] == kind]


def test_stale_read_is_ignored_and_read_entries_reach_reader_and_peer(
    client: httpx.Client,
) -> None:
    alice, bob = new_account(client, "ra"), new_account(client, "rb")
    m1 = _send(client, alice, bob, "one")
    m2 = _send(client, alice, bob, "two")
    cid = _direct(alice, bob)
    assert _unread(client, bob) == {cid: 2}
    assert _unread(client, alice) == {cid: 0}  # own messages are never unread
    assert _read(client, bob, cid, m1).status_code == 204
    assert _unread(client, bob) == {cid: 1}
    assert _read(client, bob, cid, m2).status_code == 204
    assert _unread(client, bob) == {cid: 0}
    assert _read(client, bob, cid, m1).status_code == 204  # stale: accepted, nothing moves
    assert _read(client, bob, cid, m2).status_code == 204  # repeated
    assert _unread(client, bob) == {cid: 0}
    for who in (alice, bob):
        reads = _entries(client, who, "read")
        assert [(e["up_to_msg_id"], e["msg_id"], e["sender_id"], e["conversation_id"])
                for e in reads] == [(m1, m1, bob.user_id, cid), (m2, m2, bob.user_id, cid)]
    assert _read(client, bob, cid, "12345").status_code == 404  # not a message of it
    assert _read(client, bob, cid, "x").status_code == 422


async def test_websocket_read_op_reaches_the_readers_other_device_and_the_peer(
    server: MessengerProcess,
) -> None:
    with server.client() as client:
        alice, bob = new_account(client, "wa"), new_account(client, "wb")
        bob_tablet = login(client, bob.username)
        msg_id = _send(client, alice, bob, "read me")
        cursors = {who.device_id: sync_all(client, who)[1] for who in (alice, bob_tablet)}
    cid = _direct(alice, bob)
    sockets = {}
    for who in (alice, bob_tablet, bob):
        ws = await open_ws(server.ws_url, who)
        if who.device_id in cursors:
            await ws.send(json.dumps({"op": "sync", "cur_max_msg_id": cursors[who.device_id]}))
        sockets[who.device_id] = ws
    try:
        reader = sockets[bob.device_id]
        await reader.send(json.dumps({"op": "read", "conversation_id": cid,
                                      "up_to_msg_id": msg_id}))  # fmt: skip
        for who in (alice, bob_tablet):
            [entry] = await collect_entries(sockets[who.device_id], 1)
            assert (entry["kind"], entry["up_to_msg_id"], entry["sender_id"]) == (
                "read", msg_id, bob.user_id)  # fmt: skip
        await reader.send(json.dumps({"op": "read", "conversation_id": cid, "ref": "r1"}))
        error = await next_frame(reader, "error")
        assert (error["code"], error["ref"]) == ("invalid_frame", "r1")
        await reader.send(json.dumps({"op": "read", "conversation_id": "d:1:2",
                                      "up_to_msg_id": msg_id, "ref": "r2"}))  # fmt: skip
        error = await next_frame(reader, "error")
        assert (error["code"], error["ref"]) == ("forbidden", "r2")
    finally:
        for ws in sockets.values():
            await ws.close()


def test_conversation_list_newest_first_with_titles_and_last_message(
    client: httpx.Client,
) -> None:
    name = f"rt{uuid.uuid4().hex[:10]}"
    r = client.post("/v1/auth/signup", json={"username": name, "password": "correct-horse",
                                             "display_name": "Tess Titled"})  # fmt: skip
    assert r.status_code == 201, r.text
    tess = login(client, name)
    me, plain = new_account(client, "rm"), new_account(client, "rp")
    _send(client, tess, me, "from tess")
    _send(client, plain, me, "from plain")
    _send(client, me, me, "a note")
    rows = _list(client, me)
    assert [(row["conversation_id"], row["kind"], row["title"], row["unread"])
            for row in rows] == [
        (_direct(me, me), "direct", me.username, 0),
        (_direct(me, plain), "direct", plain.username, 1),
        (_direct(me, tess), "direct", "Tess Titled", 1),
    ]  # fmt: skip
    last = rows[1]["last_message"]
    assert (last["body"], last["sender_id"], last["conversation_id"]) == (
        "from plain", plain.user_id, _direct(me, plain))  # fmt: skip
    assert set(last) == {"msg_id", "conversation_id", "sender_id", "sender_device_id", "body",
                         "created_at", "attachments"}
    assert last["attachments"] == []
    _send(client, me, tess, "reply")  # activity moves the conversation to the top
    assert [row["title"] for row in _list(client, me)][0] == "Tess Titled"
    assert [row["title"] for row in _list(client, tess)] == [me.username]
    assert _list(client, new_account(client, "rn")) == []


def test_history_pages_newest_first_for_participants_only(client: httpx.Client) -> None:
    alice, bob, eve = (new_account(client, p) for p in ("ha", "hb", "he"))
    ids = [_send(client, alice, bob, f"m{i}") for i in range(5)]
    cid = _direct(alice, bob)
    r = _history(client, bob, cid, limit=2)
    assert r.status_code == 200, r.text
    assert [m["msg_id"] for m in r.json()] == [ids[4], ids[3]]
    r = _history(client, bob, cid, limit=2, before=ids[3])
    assert [m["body"] for m in r.json()] == ["m2", "m1"]
    assert [m["body"] for m in _history(client, alice, cid, before=ids[1]).json()] == ["m0"]
    assert len(_history(client, alice, cid).json()) == 5  # default limit 50
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "x"}, {"before": "nope"}):
        r = _history(client, bob, cid, **params)
        assert r.status_code == 422 and r.json()["error"]["code"], params
    # Every conversation endpoint refuses outsiders, reversed ids and malformed ids alike.
    low, high = cid.split(":")[1:]
    for target, status in ((cid, 403), (f"d:{high}:{low}", 404), ("d:x", 422)):
        assert _history(client, eve, target).status_code == status
        assert _read(client, eve, target, ids[0]).status_code == status
        mute = client.post(f"/v1/conversations/{target}/mute", json={"until": None},
                           headers=eve.headers)
        assert mute.status_code == status


def test_delete_for_everyone_reaches_every_inbox(client: httpx.Client) -> None:
    alice, bob, eve = (new_account(client, p) for p in ("da", "db", "de"))
    gone = _send(client, alice, bob, "oops")
    kept = _send(client, alice, bob, "fine")
    cid = _direct(alice, bob)
    assert _delete(client, bob, gone, "everyone").status_code == 403  # not the sender
    assert _delete(client, eve, gone, "everyone").status_code == 404  # not a participant
    assert _delete(client, alice, "4242", "everyone").status_code == 404
    assert _delete(client, alice, gone, "all").status_code == 422
    assert _delete(client, alice, gone, "everyone").status_code == 204
    assert _delete(client, alice, gone, "everyone").status_code == 204  # a repeat: no-op
    for who in (alice, bob):
        deletes = _entries(client, who, "delete")
        assert [(e["msg_id"], e["scope"], e["sender_id"]) for e in deletes] == [
            (gone, "everyone", alice.user_id)]  # fmt: skip
        assert [m["msg_id"] for m in _history(client, who, cid).json()] == [kept]
    assert _entries(client, eve, "delete") == []
    assert _unread(client, bob) == {cid: 1}


def test_delete_for_me_only_in_own_inbox(client: httpx.Client) -> None:
    alice, bob = new_account(client, "ma"), new_account(client, "mb")
    first = _send(client, alice, bob, "first")
    second = _send(client, alice, bob, "second")
    cid = _direct(alice, bob)
    assert _delete(client, bob, second).status_code == 204  # scope defaults to me
    assert _delete(client, bob, second, "me").status_code == 204  # a repeat: no-op
    assert [(e["msg_id"], e["scope"]) for e in _entries(client, bob, "delete")] == [
        (second, "me")]  # fmt: skip
    assert _entries(client, alice, "delete") == []
    assert [m["msg_id"] for m in _history(client, bob, cid).json()] == [first]
    assert [m["msg_id"] for m in _history(client, alice, cid).json()] == [second, first]
    [row] = _list(client, bob)
    assert (row["unread"], row["last_message"]["msg_id"]) == (1, first)
    assert _list(client, alice)[0]["last_message"]["msg_id"] == second


def test_group_conversations_unread_reads_and_delete_for_everyone(client: httpx.Client) -> None:
    owner, member, late, outsider = (new_account(client, p) for p in ("ga", "gb", "gc", "gd"))
    r = client.post("/v1/groups", json={"name": "Crew", "member_ids": [member.user_id]},
                    headers=owner.headers)
    assert r.status_code == 201, r.text
    group_id = r.json()["group_id"]
    cid = f"g:{group_id}"
    assert [(row["conversation_id"], row["kind"], row["title"], row["unread"],
             row["last_message"]) for row in _list(client, member)] == [
        (cid, "group", "Crew", 0, None)]  # fmt: skip
    early = client.post("/v1/messages", headers=owner.headers, json={
        "to_group": group_id, "body": "early", "client_msg_id": uuid.uuid4().hex}).json()
    r = client.post(f"/v1/groups/{group_id}/members", json={"user_ids": [late.user_id]},
                    headers=owner.headers)
    assert r.status_code == 200, r.text
    assert _unread(client, late) == {cid: 0}  # history from before joining is not unread
    later = client.post("/v1/messages", headers=owner.headers, json={
        "to_group": group_id, "body": "later", "client_msg_id": uuid.uuid4().hex}).json()
    assert _unread(client, member) == {cid: 2}
    assert _unread(client, late) == {cid: 1}
    assert _read(client, member, cid, later["msg_id"]).status_code == 204
    assert _unread(client, member) == {cid: 0}
    assert len(_entries(client, member, "read")) == 1
    assert _entries(client, owner, "read") == []  # groups: only the reader's own devices
    for status_of in (_history(client, outsider, cid), _read(client, outsider, cid,
                                                             later["msg_id"])):
        assert status_of.status_code == 403
    assert _delete(client, outsider, early["msg_id"], "everyone").status_code == 404
    assert _delete(client, owner, early["msg_id"], "everyone").status_code == 204
    for who in (owner, member, late):
        assert [(e["msg_id"], e["scope"]) for e in _entries(client, who, "delete")] == [
            (early["msg_id"], "everyone")]  # fmt: skip
        assert [m["body"] for m in _history(client, who, cid).json()] == ["later"]
    assert _entries(client, outsider, "delete") == []


def test_a_replayed_key_never_shows_the_original_chat_to_others(client: httpx.Client) -> None:
    """A client_msg_id reused towards someone else replays the original send: the new
    audience must not be indexed into the original conversation (privacy)."""
    alice, bob, xavier, carol = (new_account(client, p) for p in ("pa", "pb", "px", "pc"))
    key = uuid.uuid4().hex
    first = send(client, alice, bob.user_id, "for bob only", key)
    assert first.status_code == 201, first.text
    again = send(client, alice, xavier.user_id, "anything", key)
    assert again.status_code == 200 and again.json()["msg_id"] == first.json()["msg_id"]
    r = client.post("/v1/groups", json={"name": "Club", "member_ids": [carol.user_id]},
                    headers=alice.headers)
    assert r.status_code == 201, r.text
    group_id = r.json()["group_id"]
    replay = client.post("/v1/messages", headers=alice.headers, json={
        "to_group": group_id, "body": "anything", "client_msg_id": key})
    assert replay.status_code == 200 and replay.json()["msg_id"] == first.json()["msg_id"]
    cid = _direct(alice, bob)
    assert _list(client, xavier) == []
    assert [row["conversation_id"] for row in _list(client, carol)] == [f"g:{group_id}"]
    assert _unread(client, bob) == {cid: 1}
    assert {row["conversation_id"] for row in _list(client, alice)} == {cid, f"g:{group_id}"}
    assert _entries(client, xavier, "message") == [] and _entries(client, carol, "message") == []


def test_delete_for_everyone_reaches_a_member_who_left_since(client: httpx.Client) -> None:
    owner, stayer, leaver = (new_account(client, p) for p in ("la", "lb", "lc"))
    r = client.post("/v1/groups", json={"name": "Crew", "member_ids": [stayer.user_id,
                                                                       leaver.user_id]},
                    headers=owner.headers)
    assert r.status_code == 201, r.text
    group_id = r.json()["group_id"]
    sent = client.post("/v1/messages", headers=owner.headers, json={
        "to_group": group_id, "body": "oops", "client_msg_id": uuid.uuid4().hex}).json()
    assert [e["body"] for e in _entries(client, leaver, "message")] == ["oops"]
    r = client.delete(f"/v1/groups/{group_id}/members/{leaver.user_id}", headers=leaver.headers)
    assert r.status_code == 204, r.text
    assert _delete(client, owner, sent["msg_id"], "everyone").status_code == 204
    for who in (owner, stayer, leaver):  # the leaver's devices hold the message too
        assert [(e["msg_id"], e["scope"]) for e in _entries(client, who, "delete")] == [
            (sent["msg_id"], "everyone")]  # fmt: skip
