"""Every failure answers with the API's error envelope, never a 500 for bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from api.errors import describe_validation
from tests.api.server import MessengerProcess, new_account, sync_all
from tests.api.wsclient import next_frame, open_ws


def _envelope(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]


def test_unknown_route_and_method(client: httpx.Client) -> None:
    _envelope(client.get("/v1/nope"), 404, "not_found")
    _envelope(client.put("/healthz"), 405, "method_not_allowed")


def test_malformed_json_and_wrong_types(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    _envelope(client.post("/v1/auth/signup", content=b"{oops", headers=headers), 400,
              "invalid_json")
    _envelope(client.post("/v1/auth/signup", json=[1, 2]), 422, "invalid_request")
    _envelope(client.post("/v1/auth/signup", json={"username": 5}), 422, "invalid_request")
    _envelope(client.post("/v1/auth/login", json={"username": "abc", "password": "password1",
                                                  "platform": "toaster"}), 422,
              "invalid_request")


def test_oversized_body_is_413(client: httpx.Client) -> None:
    alice = new_account(client)
    big = b'{"body": "' + b"x" * 200_000 + b'"}'
    r = client.post("/v1/messages", content=big,
                    headers={**alice.headers, "content-type": "application/json"})
    _envelope(r, 413, "request_too_large")


def test_malformed_ids_in_paths_and_queries_are_422(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    h = alice.headers
    for bad in ("-1", "99999999999999999999", "1e3", "0x10", "\u0661\u0662"):
        _envelope(client.get(f"/v1/users/{bad}", headers=h), 422, "invalid_request")
        _envelope(client.delete(f"/v1/devices/{bad}", headers=h), 422, "invalid_request")
        _envelope(client.delete(f"/v1/devices/{bad}/push", headers=h), 422, "invalid_request")
        _envelope(client.put(f"/v1/devices/{bad}/push", json={"provider": "fcm", "token": "t"},
                             headers=h), 422, "invalid_request")
        _envelope(client.get("/v1/sync", params={"cur_max_msg_id": bad}, headers=h), 422,
                  "invalid_request")
    _envelope(client.get("/v1/sync?cur_max_msg_id=", headers=h), 422, "invalid_request")
    _envelope(client.get("/v1/sync", params={"limit": "ten"}, headers=h), 422,
              "invalid_request")
    low, high = sorted((int(alice.user_id), int(bob.user_id)))
    for cid, status, code in [("x:1", 422, "invalid_request"), ("d:1", 422, "invalid_request"),
                              ("d:a:b", 422, "invalid_request"),
                              (f"d:0{low}:{high}", 422, "invalid_request"),  # not canonical
                              (f"g:0{low}", 422, "invalid_request"),
                              (f"d:{high}:{low}", 404, "not_found"),
                              (f"d:{bob.user_id}:{bob.user_id}", 403, "forbidden")]:
        _envelope(client.post(f"/v1/conversations/{cid}/mute", json={}, headers=h), status, code)


def test_bodies_that_cannot_be_decoded_are_400_invalid_json(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    for raw in (b'{"username": "\xff\xfe"}', b"[" * 50_000, b'{"a":' * 10_000):
        _envelope(client.post("/v1/auth/signup", content=raw, headers=headers), 400,
                  "invalid_json")


def test_lone_surrogates_are_422_and_escaped_pairs_are_text(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    headers = {**alice.headers, "content-type": "application/json"}

    def post_send(body: str, key: str) -> httpx.Response:
        raw = f'{{"to_user": "{bob.user_id}", "body": "{body}", "client_msg_id": "{key}"}}'
        return client.post("/v1/messages", content=raw.encode(), headers=headers)

    _envelope(post_send("\\ud800", "k1"), 422, "invalid_request")
    _envelope(post_send("ok", "\\udfff"), 422, "invalid_request")
    signup = b'{"username": "surrogate1", "password": "password\\ud800"}'
    _envelope(client.post("/v1/auth/signup", content=signup, headers=headers), 422,
              "invalid_request")
    assert post_send("\\ud83d\\ude00", "emoji").status_code == 201  # a valid pair: an emoji
    entries, _ = sync_all(client, bob)
    assert [e["body"] for e in entries] == ["\U0001f600"]


def test_wrong_types_in_a_send_are_422(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    ok = {"to_user": bob.user_id, "body": "x", "client_msg_id": "k"}
    for bad in ({"client_msg_id": 5}, {"body": 5}, {"body": None}, {"to_user": True},
                {"to_user": 1.5}, {"to_user": 2**70}, {"to_user": ["1"]}):
        r = client.post("/v1/messages", json={**ok, **bad}, headers=alice.headers)
        _envelope(r, 422, "invalid_request")
    r = client.post("/v1/messages", content=b"to_user=1&body=x",
                    headers={**alice.headers, "content-type": "application/x-www-form-urlencoded"})
    _envelope(r, 422, "invalid_request")


def test_a_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    alice = new_account(client)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts as it reads
        yield b'{"body": "'
        for _ in range(200):  # 200 KB, over the 128 KiB limit
            yield b"x" * 1000

    r = client.post("/v1/messages", content=chunks(),
                    headers={**alice.headers, "content-type": "application/json"})
    _envelope(r, 413, "request_too_large")


async def test_unusable_send_and_typing_frames_get_error_frames(server: MessengerProcess,
                                                                client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    ws = await open_ws(server.ws_url, alice)
    send = {"op": "send", "to_user": bob.user_id, "body": "x", "client_msg_id": "k"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**send, "body": "x" * 16385}, "message_too_large"),
        ({**send, "client_msg_id": "k" * 129}, "invalid_request"),
        ({**send, "client_msg_id": None}, "invalid_frame"),
        ({**send, "to_user": "12ab"}, "invalid_request"),
        ({**send, "to_user": "424242"}, "not_found"),
        ({**send, "to_group": "5"}, "invalid_request"),
        ({"op": "typing", "conversation_id": "g:"}, "invalid_request"),
        ({"op": "ack", "cur_max_msg_id": -1}, "invalid_request"),
    ]
    for n, (frame, code) in enumerate(cases):
        await ws.send(json.dumps({**frame, "ref": f"r{n}"}))
        error = await next_frame(ws, "error")
        assert (error["code"], error.get("ref")) == (code, f"r{n}"), frame
    # Lone surrogates (and a ref that could not be echoed) are refused, the socket stays.
    for raw in ('{"op": "ping", "ref": "\\ud800"}', '{"op": "\\udc00"}',
                '{"op": "send", "to_user": "1", "body": "\\ud800", "client_msg_id": "s"}'):
        await ws.send(raw)
        assert (await next_frame(ws, "error"))["code"] == "invalid_frame", raw
    await ws.send(json.dumps({"op": "ping", "ref": "alive"}))
    assert (await next_frame(ws, "pong"))["ref"] == "alive"
    await ws.close()


def test_docs_and_health(server: MessengerProcess, client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    production = "MESSENGER_REDIS_URL" in server.env
    stores = {"redis", "cassandra", "worker_id"} if production else {"inbox"}
    assert ready == {"ready": True, "checks": dict.fromkeys(stores, "ok")}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/messages", "/v1/sync", "/v1/auth/login"} <= set(paths)
    assert "messenger_ws_connections" in client.get("/metrics").text


def test_describe_validation_is_pure() -> None:
    assert describe_validation([{"type": "json_invalid"}])[:2] == (400, "invalid_json")
    status, code, message = describe_validation(
        [{"type": "missing", "loc": ("body", "username"), "msg": "Field required"}]
    )
    assert (status, code) == (422, "invalid_request") and "username" in message
