"""1:1 sends and sync over real HTTP, with the API's validation and idempotency rules."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.api.server import new_account, send, sync_all


def test_send_lands_in_both_inboxes(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    r = send(client, alice, bob.user_id, "hello bob")
    assert r.status_code == 201, r.text
    receipt = r.json()
    low, high = sorted((int(alice.user_id), int(bob.user_id)))
    assert receipt["conversation_id"] == f"d:{low}:{high}"
    assert receipt["created_at"].endswith("Z") and "." in receipt["created_at"]
    bob_entries, _ = sync_all(client, bob)
    alice_entries, _ = sync_all(client, alice)
    assert [e["body"] for e in bob_entries] == ["hello bob"]
    assert alice_entries[0]["msg_id"] == bob_entries[0]["msg_id"] == receipt["msg_id"]
    assert alice_entries[0]["id"] == receipt["id"]
    entry = bob_entries[0]
    assert entry["kind"] == "message" and entry["sender_id"] == alice.user_id
    assert entry["sender_device_id"] == alice.device_id


def test_replayed_client_msg_id_returns_the_original(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    key = uuid.uuid4().hex
    first = send(client, alice, bob.user_id, "once", key)
    again = send(client, alice, bob.user_id, "different body", key)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    entries, _ = sync_all(client, bob)
    assert [e["body"] for e in entries] == ["once"]


def test_send_to_self_is_notes_to_self(client: httpx.Client) -> None:
    alice = new_account(client)
    r = send(client, alice, alice.user_id, "note")
    assert r.status_code == 201
    assert r.json()["conversation_id"] == f"d:{alice.user_id}:{alice.user_id}"
    entries, _ = sync_all(client, alice)
    assert [e["body"] for e in entries] == ["note"]


def test_send_validation(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)

    def post(body: dict[str, object]) -> httpx.Response:
        return client.post("/v1/messages", json=body, headers=alice.headers)

    ok = {"to_user": bob.user_id, "body": "x", "client_msg_id": "k1"}
    assert post({**ok, "body": ""}).status_code == 422
    r = post({**ok, "body": "é" * 8193})
    assert r.status_code == 413 and r.json()["error"]["code"] == "message_too_large"
    assert post({**ok, "body": "é" * 8192, "client_msg_id": "max"}).status_code == 201
    # The largest legal body, escaped as JSON encoders may (\u0001, \u003c: 6 bytes each),
    # still fits the request limit.
    escaped = json.dumps({**ok, "body": "\x01<" * 8192, "client_msg_id": "esc"})
    escaped = escaped.replace("<", "\\u003c")
    assert len(escaped) > 98_000
    r = client.post("/v1/messages", content=escaped,
                    headers={**alice.headers, "content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert post({**ok, "client_msg_id": ""}).status_code == 422
    assert post({**ok, "client_msg_id": "k" * 129}).status_code == 422
    assert post({**ok, "to_group": "5"}).status_code == 422
    assert post({"body": "x", "client_msg_id": "k2"}).status_code == 422
    assert post({**ok, "to_user": "12ab"}).status_code == 422
    assert post({**ok, "to_user": "424242"}).status_code == 404
    assert post({**ok, "to_user": int(bob.user_id), "client_msg_id": "int-id"}).status_code == 201


def test_sync_limits_and_cursor(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    for i in range(5):
        assert send(client, alice, bob.user_id, f"m{i}").status_code == 201
    h = bob.headers
    for limit in (0, 1001, -1):
        assert client.get("/v1/sync", params={"limit": limit}, headers=h).status_code == 422
    assert client.get("/v1/sync", params={"cur_max_msg_id": "x"}, headers=h).status_code == 422
    page = client.get("/v1/sync", params={"limit": 2}, headers=h).json()
    assert len(page["entries"]) == 2 and page["has_more"] is True
    assert page["cur_max_msg_id"] == page["entries"][-1]["id"]
    rest = client.get("/v1/sync", params={"cur_max_msg_id": page["cur_max_msg_id"]}, headers=h
                      ).json()
    assert [e["body"] for e in rest["entries"]] == ["m2", "m3", "m4"] and not rest["has_more"]
    empty = client.get("/v1/sync", params={"cur_max_msg_id": rest["cur_max_msg_id"]}, headers=h
                       ).json()
    assert empty == {"entries": [], "cur_max_msg_id": rest["cur_max_msg_id"], "has_more": False}


def test_ack_never_moves_back(client: httpx.Client) -> None:
    alice = new_account(client)
    h = alice.headers
    assert client.post("/v1/sync/ack", json={"cur_max_msg_id": "100"}, headers=h
                       ).json() == {"cur_max_msg_id": "100"}
    assert client.post("/v1/sync/ack", json={"cur_max_msg_id": 50}, headers=h
                       ).json() == {"cur_max_msg_id": "100"}
    assert client.post("/v1/sync/ack", json={"cur_max_msg_id": "-1"}, headers=h
                       ).status_code == 422
