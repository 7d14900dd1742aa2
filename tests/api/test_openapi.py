"""The OpenAPI document is one a client can rely on, on every backend: each answer the server
really sends, success or error, validates against the schema of its own ``/openapi.json``;
every route is exercised; and every route documents the error statuses it can answer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.openapi_contract import Contract
from tests.api.server import Account, MessengerProcess, login, new_account, send, sync_all

MAX_SENDS_UNTIL_REFUSED = 2000
"""The default bucket holds 200 sends and refills 20 a second: any backend drains it sooner."""


@pytest.fixture
def contract(server: MessengerProcess) -> Contract:
    with server.client() as c:
        r = c.get("/openapi.json")
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.1")
    return Contract(r.json())


@pytest.fixture
def checked(server: MessengerProcess, contract: Contract) -> Iterator[httpx.Client]:
    """A client whose every answer is checked against the contract."""
    with httpx.Client(base_url=server.url, timeout=30,
                      event_hooks={"response": [contract.check]}) as c:
        yield c


def expect(r: httpx.Response, status: int, code: str | None = None) -> Any:
    """The answer had ``status`` (and error ``code``); its JSON body, if any."""
    assert r.status_code == status, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code, r.text
    return r.json() if r.content else {}


def direct_id(a: Account, b: Account) -> str:
    low, high = sorted((int(a.user_id), int(b.user_id)))
    return f"d:{low}:{high}"


def test_every_answer_matches_the_servers_own_schema(checked: httpx.Client,
                                                     contract: Contract) -> None:
    c = checked
    # Operations, and failures of any route alike.
    expect(c.get("/healthz"), 200)
    expect(c.get("/readyz"), 200)
    assert "messenger_ws_connections" in c.get("/metrics").text
    expect(c.get("/v1/users/me"), 401, "unauthorized")
    expect(c.get("/v1/users/me", headers={"Authorization": "Bearer nope"}), 401,
           "invalid_token")

    # Accounts and devices.
    alice, bob, carol = new_account(c), new_account(c), new_account(c)
    h = alice.headers
    expect(c.post("/v1/auth/signup", json={"username": alice.username,
                                           "password": "correct-horse"}), 409, "username_taken")
    expect(c.post("/v1/auth/signup", json={"username": "A!", "password": "x"}), 422)
    expect(c.post("/v1/auth/signup", content=b"{oops",
                  headers={"content-type": "application/json"}), 400, "invalid_json")
    expect(c.post("/v1/auth/signup", content=b"x" * 200_000,
                  headers={"content-type": "application/json"}), 413, "request_too_large")
    expect(c.post("/v1/auth/login", json={"username": alice.username, "password": "wrong-one",
                                          "platform": "cli"}), 401, "invalid_credentials")
    login_body = {"username": alice.username, "password": "correct-horse", "platform": "ios"}
    expect(c.post("/v1/auth/login", json={**login_body, "device_id": bob.device_id}), 403)
    expect(c.post("/v1/auth/login", json={**login_body, "device_id": "42"}), 404)
    phone = login(c, alice.username, platform="android")
    assert expect(c.get("/v1/users/me", headers=h), 200)["user_id"] == alice.user_id
    expect(c.get(f"/v1/users/{bob.user_id}", headers=h), 200)
    expect(c.get("/v1/users", params={"username": carol.username}, headers=h), 200)
    expect(c.get("/v1/users", params={"username": "nobody-here"}, headers=h), 404)
    expect(c.get("/v1/users/12ab", headers=h), 422, "invalid_request")
    push = {"provider": "fcm", "token": uuid.uuid4().hex}
    expect(c.put(f"/v1/devices/{phone.device_id}/push", json=push, headers=h), 204)
    expect(c.put(f"/v1/devices/{bob.device_id}/push", json=push, headers=h), 403)
    devices = expect(c.get("/v1/devices", headers=h), 200)
    assert {"provider": "fcm"} in [d["push"] for d in devices]  # a null push validates too
    expect(c.delete(f"/v1/devices/{phone.device_id}/push", headers=h), 204)

    # Groups: create, replay, read, add, refuse.
    key = uuid.uuid4().hex
    new_group = {"name": "hikers", "member_ids": [bob.user_id], "client_group_id": key}
    group = expect(c.post("/v1/groups", json=new_group, headers=h), 201)
    assert expect(c.post("/v1/groups", json=new_group, headers=h), 200) == group
    gid, gcid = group["group_id"], f"g:{group['group_id']}"
    expect(c.get(f"/v1/groups/{gid}", headers=h), 200)
    expect(c.get(f"/v1/groups/{gid}", headers=carol.headers), 403, "forbidden")
    expect(c.post(f"/v1/groups/{gid}/members", json={"user_ids": [carol.user_id]},
                  headers=h), 200)
    expect(c.post(f"/v1/groups/{gid}/members", json={"user_ids": ["42"]}, headers=h), 404)
    too_many = [str(n) for n in range(1, 101)]
    expect(c.post("/v1/groups", json={"name": "crowd", "member_ids": too_many}, headers=h),
           409, "group_full")

    # Messages: sends, replays, refusals.
    key = uuid.uuid4().hex
    first = expect(send(c, alice, bob.user_id, "hi bob", key), 201)
    assert expect(send(c, alice, bob.user_id, "hi bob", key), 200) == first
    in_group = expect(c.post("/v1/messages", headers=h, json={
        "to_group": gid, "body": "saturday?", "client_msg_id": uuid.uuid4().hex}), 201)
    expect(send(c, alice, bob.user_id, "x" * 16_385), 413, "message_too_large")
    expect(send(c, alice, "42", "anyone?"), 404)
    expect(c.post("/v1/messages", headers=h, json={
        "to_user": bob.user_id, "to_group": gid, "body": "x", "client_msg_id": "k"}), 422)
    outsider_group = expect(c.post("/v1/groups", json={"name": "b"}, headers=bob.headers), 201)
    expect(c.post("/v1/messages", headers=h, json={
        "to_group": outsider_group["group_id"], "body": "x", "client_msg_id": "k"}), 403)

    # Conversations: list, history, read, mute.
    direct = direct_id(alice, bob)
    listed = expect(c.get("/v1/conversations", headers=bob.headers), 200)
    assert {direct, gcid} <= {row["conversation_id"] for row in listed}
    expect(c.get(f"/v1/conversations/{gcid}/messages", params={"limit": 10}, headers=h), 200)
    expect(c.get(f"/v1/conversations/{direct}/messages", headers=carol.headers), 403)
    low, high = direct.split(":")[1:]
    expect(c.get(f"/v1/conversations/d:{high}:{low}/messages", headers=h), 404)
    expect(c.get(f"/v1/conversations/{gcid}/messages", params={"limit": 0}, headers=h), 422)
    expect(c.post(f"/v1/conversations/{direct}/read", json={"up_to_msg_id": first["msg_id"]},
                  headers=bob.headers), 204)
    expect(c.post(f"/v1/conversations/{direct}/read", json={"up_to_msg_id": "42"},
                  headers=bob.headers), 404)
    expect(c.post(f"/v1/conversations/{gcid}/mute", json={"until": None},
                  headers=bob.headers), 204)

    # Deletes, then sync: every kind of entry, and the ack.
    expect(c.delete(f"/v1/messages/{in_group['msg_id']}", params={"scope": "everyone"},
                    headers=bob.headers), 403)
    expect(c.delete(f"/v1/messages/{in_group['msg_id']}", params={"scope": "all"},
                    headers=h), 422)
    expect(c.delete(f"/v1/messages/{in_group['msg_id']}", params={"scope": "everyone"},
                    headers=h), 204)
    entries, cursor = sync_all(c, bob, limit=2)
    assert {e["kind"] for e in entries} == {"message", "read", "group_event", "delete"}
    expect(c.get("/v1/sync", params={"limit": 1001}, headers=h), 422)
    assert expect(c.post("/v1/sync/ack", json={"cur_max_msg_id": cursor},
                         headers=bob.headers), 200) == {"cur_max_msg_id": cursor}

    # Attachments: upload, send, metadata, link, content (a range too), presigned (local: 501).
    att = expect(c.post("/v1/attachments", params={"name": "a.txt"}, content=b"\x00hello",
                        headers=h), 201)
    expect(c.post("/v1/attachments", params={"name": "a/b"}, content=b"x", headers=h), 422)
    expect(c.post("/v1/messages", headers=h, json={
        "to_user": bob.user_id, "attachments": [att["attachment_id"]], "client_msg_id": "a"}),
        201)
    aid = att["attachment_id"]
    assert expect(c.get(f"/v1/attachments/{aid}", headers=bob.headers), 200) == att
    expect(c.get(f"/v1/attachments/{aid}/url", headers=bob.headers), 200)
    expect(c.get(f"/v1/attachments/{aid}/url", headers=carol.headers), 404)
    content = c.get(f"/v1/attachments/{aid}/content", headers=bob.headers)
    assert content.status_code == 200 and content.content == b"\x00hello"
    ranged = c.get(f"/v1/attachments/{aid}/content", headers={**bob.headers,
                                                               "range": "bytes=1-2"})
    assert ranged.status_code == 206 and ranged.content == b"he"
    expect(c.post("/v1/attachments/uploads", json={"name": "b", "size": 3}, headers=h), 501)
    expect(c.post("/v1/attachments/42/complete", headers=h), 404)

    # Presence, leaving, logout.
    statuses = expect(c.get("/v1/presence", params={"user_ids": f"{bob.user_id},42"},
                            headers=h), 200)
    assert statuses["42"] == {"status": "offline", "last_seen": None}
    expect(c.get("/v1/presence", params={"user_ids": ""}, headers=h), 422)
    expect(c.delete(f"/v1/groups/{gid}/members/{carol.user_id}", headers=bob.headers), 403)
    expect(c.delete(f"/v1/groups/{gid}/members/{carol.user_id}", headers=h), 204)
    expect(c.delete(f"/v1/devices/{phone.device_id}", headers=h), 204)
    expect(c.get("/v1/users/me", headers=phone.headers), 401, "invalid_token")

    # Over the send limit: 429 with Retry-After.
    for n in range(MAX_SENDS_UNTIL_REFUSED):
        r = send(c, carol, bob.user_id, f"flood {n}")
        if r.status_code == 429:
            break
        assert r.status_code == 201, r.text
    expect(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1

    exercised = {(method, template) for method, template, _ in contract.checked}
    assert exercised == contract.operations(), contract.operations() - exercised


def test_every_route_documents_its_errors(contract: Contract) -> None:
    """500 everywhere, 401 and 503 on authenticated routes, 400/413/422 with a body, 422 with
    parameters, each with the error envelope; FastAPI's own validation-error schema nowhere."""
    envelope = {"$ref": "#/components/schemas/ErrorOut"}
    for method, template in contract.operations():
        operation = contract.doc["paths"][template][method.lower()]
        documented = operation["responses"]
        expected = {"500"}
        if operation.get("security"):
            expected |= {"401", "503"}
        if "requestBody" in operation:
            expected |= {"400", "413", "422"}
        if operation.get("parameters"):
            expected.add("422")
        assert expected <= set(documented), (method, template, expected - set(documented))
        success = [s for s in documented if s.startswith("2")]
        assert success, (method, template)
        for status, answer in documented.items():
            if status.startswith(("4", "5")) and template != "/readyz":
                assert answer["content"]["application/json"]["schema"] == envelope, (
                    method, template, status)
    assert "HTTPValidationError" not in contract.doc["components"]["schemas"]
