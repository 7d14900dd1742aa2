"""Auth and devices over real HTTP: signup, login, devices, logout, tokens."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from tests.api.server import login, new_account


def test_signup_then_login_issues_a_device_token(client: httpx.Client) -> None:
    name = f"al{uuid.uuid4().hex[:8]}"
    r = client.post("/v1/auth/signup", json={"username": name, "password": "password1",
                                             "display_name": "Alice"})
    assert r.status_code == 201
    user_id = r.json()["user_id"]
    assert isinstance(user_id, str) and user_id.isdigit()
    r = client.post("/v1/auth/login", json={"username": name, "password": "password1",
                                            "platform": "ios", "device_name": "phone"})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "bearer" and body["user_id"] == user_id
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user_id and claims["did"] == body["device_id"]
    assert claims["exp"] - time.time() > body["expires_in"] - 60
    me = client.get("/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"user_id": user_id, "username": name, "display_name": "Alice"}


def test_username_rules_and_uniqueness(client: httpx.Client) -> None:
    name = f"bo{uuid.uuid4().hex[:8]}"
    assert client.post("/v1/auth/signup", json={"username": name, "password": "password1"}
                       ).status_code == 201
    r = client.post("/v1/auth/signup", json={"username": name, "password": "password1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "username_taken"
    for bad in ("ab", "UPPER", "x" * 33, "sp ace"):
        r = client.post("/v1/auth/signup", json={"username": bad, "password": "password1"})
        assert r.status_code == 422, bad
    r = client.post("/v1/auth/signup", json={"username": f"c{name}", "password": "short"})
    assert r.status_code == 422


def test_wrong_credentials_are_401(client: httpx.Client) -> None:
    acct = new_account(client)
    r = client.post("/v1/auth/login", json={"username": acct.username, "password": "wrong-pass",
                                            "platform": "cli"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    r = client.post("/v1/auth/login", json={"username": "nobody-here", "password": "password1",
                                            "platform": "cli"})
    assert r.status_code == 401


def test_each_login_is_a_device_with_its_own_cursor(client: httpx.Client) -> None:
    phone = new_account(client)
    laptop = login(client, phone.username, platform="desktop")
    assert laptop.device_id != phone.device_id
    client.post("/v1/sync/ack", json={"cur_max_msg_id": "42"}, headers=phone.headers)
    devices = {d["device_id"]: d for d in client.get("/v1/devices", headers=laptop.headers).json()}
    assert set(devices) == {phone.device_id, laptop.device_id}
    assert devices[phone.device_id]["cur_max_msg_id"] == "42"
    assert devices[laptop.device_id]["cur_max_msg_id"] == "0"
    assert devices[laptop.device_id]["platform"] == "desktop"


def test_relogin_with_device_id_and_foreign_or_unknown_device(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    again = login(client, alice.username, device_id=alice.device_id)
    assert again.device_id == alice.device_id
    body = {"username": alice.username, "password": "correct-horse", "platform": "cli"}
    r = client.post("/v1/auth/login", json={**body, "device_id": bob.device_id})
    assert r.status_code == 403
    r = client.post("/v1/auth/login", json={**body, "device_id": "123"})
    assert r.status_code == 404


def test_logout_revokes_the_token_at_once(client: httpx.Client) -> None:
    phone = new_account(client)
    laptop = login(client, phone.username)
    assert client.delete(f"/v1/devices/{laptop.device_id}", headers=phone.headers
                         ).status_code == 204
    r = client.get("/v1/users/me", headers=laptop.headers)
    assert r.status_code == 401
    body = {"username": phone.username, "password": "correct-horse", "platform": "cli",
            "device_id": laptop.device_id}
    assert client.post("/v1/auth/login", json=body).status_code == 404
    ids = [d["device_id"] for d in client.get("/v1/devices", headers=phone.headers).json()]
    assert ids == [phone.device_id]


def test_bad_tokens_are_401(client: httpx.Client) -> None:
    assert client.get("/v1/users/me").status_code == 401
    r = client.get("/v1/users/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    forged = jwt.encode({"sub": "1", "did": "2", "exp": time.time() + 60}, "x" * 32, "HS256")
    assert client.get("/v1/users/me", headers={"Authorization": f"Bearer {forged}"}
                      ).status_code == 401


def test_user_lookup(client: httpx.Client) -> None:
    alice, bob = new_account(client), new_account(client)
    r = client.get(f"/v1/users/{bob.user_id}", headers=alice.headers)
    assert r.json()["username"] == bob.username
    r = client.get("/v1/users", params={"username": bob.username}, headers=alice.headers)
    assert r.json()["user_id"] == bob.user_id
    assert client.get("/v1/users/999", headers=alice.headers).status_code == 404
    assert client.get("/v1/users/abc", headers=alice.headers).status_code == 422
