"""Every failure answers with the API's error envelope, never a 500 for bad input."""

from __future__ import annotations

import httpx

from api.errors import describe_validation
from tests.api.server import MessengerProcess, new_account


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


def test_docs_and_health(server: MessengerProcess, client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    stores = {"redis", "cassandra"} if "MESSENGER_REDIS_URL" in server.env else {"inbox"}
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
