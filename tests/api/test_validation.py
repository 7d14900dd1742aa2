"""Every validation rule of every route, on every backend: the same input gets the same 4xx.

Each case is one rule broken once; the table runs against a real server per backend, so a
rule that only one store enforces (or a store that fails on input the rules let through, as
Cassandra did on an empty username) shows up as a mismatch here. No case may answer 5xx:
bad input is never "unavailable", whatever the backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.api.server import Account, MessengerProcess, new_account, send

TOO_BIG_ID = "9" * 20  # past 2**63 - 1


@dataclass(frozen=True)
class World:
    """Accounts and objects the cases point at: Alice and Bob share a direct chat and a
    group; Carol shares nothing with them."""

    alice: Account
    bob: Account
    carol: Account
    group_id: str
    msg_id: str

    @property
    def direct(self) -> str:
        low, high = sorted((int(self.alice.user_id), int(self.bob.user_id)))
        return f"d:{low}:{high}"

    def names(self) -> dict[str, str]:
        return {"me": self.alice.user_id, "bob": self.bob.user_id, "carol": self.carol.user_id,
                "my_device": self.alice.device_id, "bobs_device": self.bob.device_id,
                "group": self.group_id, "msg": self.msg_id, "direct": self.direct,
                "reversed": "d:{1}:{0}".format(*self.direct.split(":")[1:]),
                "bob_name": self.bob.username}


@dataclass(frozen=True)
class Case:
    """One request breaking one rule, and the answer every backend must give."""

    rule: str
    method: str
    path: str
    status: int
    code: str
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)
    as_user: str | None = "alice"  # None: no token
    raw: bytes | None = None

    def request(self, client: httpx.Client, world: World) -> httpx.Response:
        names = world.names()
        headers = {} if self.as_user is None else dict(getattr(world, self.as_user).headers)
        kwargs: dict[str, Any] = {"headers": headers,
                                  "params": {k: v.format(**names) for k, v in self.params.items()}}
        if self.raw is not None:
            kwargs["content"] = self.raw
            headers["content-type"] = "application/json"
        elif self.json is not None:
            kwargs["json"] = _format(self.json, names)
        return client.request(self.method, self.path.format(**names), **kwargs)


def _format(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names) if "{" in value else value
    if isinstance(value, list):
        return [_format(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _format(v, names) for k, v in value.items()}
    return value


def _send(**changes: Any) -> dict[str, Any]:
    return {"to_user": "{bob}", "body": "hi", "client_msg_id": "k-1", **changes}


def _signup(**changes: Any) -> dict[str, Any]:
    return {"username": "valid_name", "password": "long-enough", **changes}


def _login(**changes: Any) -> dict[str, Any]:
    return {"username": "{bob_name}", "password": "correct-horse", "platform": "cli", **changes}


I422, NF, FB, UNAUTH = (422, "invalid_request"), (404, "not_found"), (403, "forbidden"), (
    401, "unauthorized")

CASES: list[Case] = [
    # --- signup
    Case("signup: body not JSON", "POST", "/v1/auth/signup", 400, "invalid_json", raw=b"{x",
         as_user=None),
    Case("signup: body not an object", "POST", "/v1/auth/signup", *I422, json=[1], as_user=None),
    Case("signup: username missing", "POST", "/v1/auth/signup", *I422,
         json={"password": "long-enough"}, as_user=None),
    Case("signup: username empty", "POST", "/v1/auth/signup", *I422, json=_signup(username=""),
         as_user=None),
    Case("signup: username too short", "POST", "/v1/auth/signup", *I422,
         json=_signup(username="ab"), as_user=None),
    Case("signup: username too long", "POST", "/v1/auth/signup", *I422,
         json=_signup(username="a" * 33), as_user=None),
    Case("signup: username upper case", "POST", "/v1/auth/signup", *I422,
         json=_signup(username="Alice"), as_user=None),
    Case("signup: username with a space", "POST", "/v1/auth/signup", *I422,
         json=_signup(username="al ice"), as_user=None),
    Case("signup: username not a string", "POST", "/v1/auth/signup", *I422,
         json=_signup(username=12345), as_user=None),
    Case("signup: password too short", "POST", "/v1/auth/signup", *I422,
         json=_signup(password="short"), as_user=None),
    Case("signup: password too long", "POST", "/v1/auth/signup", *I422,
         json=_signup(password="x" * 1025), as_user=None),
    Case("signup: display_name empty", "POST", "/v1/auth/signup", *I422,
         json=_signup(display_name=""), as_user=None),
    Case("signup: display_name too long", "POST", "/v1/auth/signup", *I422,
         json=_signup(display_name="x" * 65), as_user=None),
    Case("signup: username taken", "POST", "/v1/auth/signup", 409, "username_taken",
         json=_signup(username="{bob_name}"), as_user=None),
    # --- login
    Case("login: username empty", "POST", "/v1/auth/login", *I422, json=_login(username=""),
         as_user=None),
    Case("login: username malformed", "POST", "/v1/auth/login", *I422,
         json=_login(username="NO SUCH"), as_user=None),
    Case("login: username too long", "POST", "/v1/auth/login", *I422,
         json=_login(username="a" * 5000), as_user=None),
    Case("login: unknown username", "POST", "/v1/auth/login", 401, "invalid_credentials",
         json=_login(username="nobody_here"), as_user=None),
    Case("login: wrong password", "POST", "/v1/auth/login", 401, "invalid_credentials",
         json=_login(password="wrong-password"), as_user=None),
    Case("login: empty password", "POST", "/v1/auth/login", 401, "invalid_credentials",
         json=_login(password=""), as_user=None),
    Case("login: platform unknown", "POST", "/v1/auth/login", *I422,
         json=_login(platform="toaster"), as_user=None),
    Case("login: platform missing", "POST", "/v1/auth/login", *I422,
         json={"username": "{bob_name}", "password": "correct-horse"}, as_user=None),
    Case("login: device_id malformed", "POST", "/v1/auth/login", *I422,
         json=_login(device_id="abc"), as_user=None),
    Case("login: device_id unknown", "POST", "/v1/auth/login", *NF,
         json=_login(device_id="424242"), as_user=None),
    Case("login: another user's device_id", "POST", "/v1/auth/login", *FB,
         json=_login(device_id="{my_device}"), as_user=None),
    # --- tokens
    Case("token missing", "GET", "/v1/users/me", *UNAUTH, as_user=None),
    # --- devices
    Case("push: provider unknown", "PUT", "/v1/devices/{my_device}/push", *I422,
         json={"provider": "gcm", "token": "t"}),
    Case("push: token empty", "PUT", "/v1/devices/{my_device}/push", *I422,
         json={"provider": "fcm", "token": ""}),
    Case("push: token too long", "PUT", "/v1/devices/{my_device}/push", *I422,
         json={"provider": "fcm", "token": "t" * 4097}),
    Case("push: topic too long", "PUT", "/v1/devices/{my_device}/push", *I422,
         json={"provider": "apns", "token": "t", "topic": "t" * 256}),
    Case("push: device id malformed", "PUT", "/v1/devices/x1/push", *I422,
         json={"provider": "fcm", "token": "t"}),
    Case("push: device id too big", "PUT", f"/v1/devices/{TOO_BIG_ID}/push", *I422,
         json={"provider": "fcm", "token": "t"}),
    Case("push: unknown device", "PUT", "/v1/devices/424242/push", *NF,
         json={"provider": "fcm", "token": "t"}),
    Case("push: another user's device", "PUT", "/v1/devices/{bobs_device}/push", *FB,
         json={"provider": "fcm", "token": "t"}),
    Case("push clear: device id malformed", "DELETE", "/v1/devices/-1/push", *I422),
    Case("push clear: unknown device", "DELETE", "/v1/devices/424242/push", *NF),
    Case("push clear: another user's device", "DELETE", "/v1/devices/{bobs_device}/push", *FB),
    Case("logout: device id malformed", "DELETE", "/v1/devices/0x10", *I422),
    Case("logout: unknown device", "DELETE", "/v1/devices/424242", *NF),
    Case("logout: another user's device", "DELETE", "/v1/devices/{bobs_device}", *FB),
    # --- users
    Case("user: id malformed", "GET", "/v1/users/abc", *I422),
    Case("user: id too big", "GET", f"/v1/users/{TOO_BIG_ID}", *I422),
    Case("user: unknown id", "GET", "/v1/users/424242", *NF),
    Case("find user: username missing", "GET", "/v1/users", *I422),
    Case("find user: username empty", "GET", "/v1/users", *I422, params={"username": ""}),
    Case("find user: username malformed", "GET", "/v1/users", *I422,
         params={"username": "Bad Name"}),
    Case("find user: username too long", "GET", "/v1/users", *I422,
         params={"username": "a" * 300}),
    Case("find user: unknown username", "GET", "/v1/users", *NF,
         params={"username": "nobody_here"}),
    # --- groups
    Case("group: name empty", "POST", "/v1/groups", *I422, json={"name": " ", "member_ids": []}),
    Case("group: name too long", "POST", "/v1/groups", *I422,
         json={"name": "n" * 101, "member_ids": []}),
    Case("group: name missing", "POST", "/v1/groups", *I422, json={"member_ids": []}),
    Case("group: member_ids not a list", "POST", "/v1/groups", *I422,
         json={"name": "g", "member_ids": "{bob}"}),
    Case("group: member id malformed", "POST", "/v1/groups", *I422,
         json={"name": "g", "member_ids": ["x"]}),
    Case("group: unknown member", "POST", "/v1/groups", *NF,
         json={"name": "g", "member_ids": ["424242"]}),
    Case("group: over 100 members", "POST", "/v1/groups", 409, "group_full",
         json={"name": "g", "member_ids": [str(n) for n in range(1, 101)]}),
    Case("group: client_group_id empty", "POST", "/v1/groups", *I422,
         json={"name": "g", "member_ids": [], "client_group_id": ""}),
    Case("group: client_group_id too long", "POST", "/v1/groups", *I422,
         json={"name": "g", "member_ids": [], "client_group_id": "k" * 129}),
    Case("group get: id malformed", "GET", "/v1/groups/g1", *I422),
    Case("group get: unknown group", "GET", "/v1/groups/424242", *NF),
    Case("group get: not a member", "GET", "/v1/groups/{group}", *FB, as_user="carol"),
    Case("group add: user_ids missing", "POST", "/v1/groups/{group}/members", *I422, json={}),
    Case("group add: user id malformed", "POST", "/v1/groups/{group}/members", *I422,
         json={"user_ids": ["1.5"]}),
    Case("group add: unknown user", "POST", "/v1/groups/{group}/members", *NF,
         json={"user_ids": ["424242"]}),
    Case("group add: not a member", "POST", "/v1/groups/{group}/members", *FB,
         json={"user_ids": ["{carol}"]}, as_user="carol"),
    Case("group add: unknown group", "POST", "/v1/groups/424242/members", *NF,
         json={"user_ids": ["{carol}"]}),
    Case("group remove: group id malformed", "DELETE", "/v1/groups/x/members/{bob}", *I422),
    Case("group remove: user id malformed", "DELETE", "/v1/groups/{group}/members/x", *I422),
    Case("group remove: not the owner", "DELETE", "/v1/groups/{group}/members/{me}", *FB,
         as_user="bob"),
    Case("group remove: not a member", "DELETE", "/v1/groups/{group}/members/{bob}", *FB,
         as_user="carol"),
    # --- messages
    Case("send: body empty", "POST", "/v1/messages", *I422, json=_send(body="")),
    Case("send: body over 16 KiB", "POST", "/v1/messages", 413, "message_too_large",
         json=_send(body="é" * 8193)),
    Case("send: body missing", "POST", "/v1/messages", *I422,
         json={"to_user": "{bob}", "client_msg_id": "k"}),
    Case("send: client_msg_id empty", "POST", "/v1/messages", *I422,
         json=_send(client_msg_id="")),
    Case("send: client_msg_id too long", "POST", "/v1/messages", *I422,
         json=_send(client_msg_id="k" * 129)),
    Case("send: both recipients", "POST", "/v1/messages", *I422,
         json=_send(to_group="{group}")),
    Case("send: no recipient", "POST", "/v1/messages", *I422,
         json={"body": "hi", "client_msg_id": "k"}),
    Case("send: to_user malformed", "POST", "/v1/messages", *I422, json=_send(to_user="12ab")),
    Case("send: to_user unknown", "POST", "/v1/messages", *NF, json=_send(to_user="424242")),
    Case("send: to_group unknown", "POST", "/v1/messages", *NF,
         json={"to_group": "424242", "body": "hi", "client_msg_id": "k"}),
    Case("send: to_group not a member", "POST", "/v1/messages", *FB,
         json={"to_group": "{group}", "body": "hi", "client_msg_id": "k"}, as_user="carol"),
    Case("delete: msg id malformed", "DELETE", "/v1/messages/abc", *I422),
    Case("delete: scope unknown", "DELETE", "/v1/messages/{msg}", *I422,
         params={"scope": "all"}),
    Case("delete: unknown message", "DELETE", "/v1/messages/424242", *NF),
    Case("delete: not a participant", "DELETE", "/v1/messages/{msg}", *NF, as_user="carol"),
    Case("delete: everyone by a non-sender", "DELETE", "/v1/messages/{msg}", *FB,
         params={"scope": "everyone"}, as_user="bob"),
    # --- sync
    Case("sync: cursor malformed", "GET", "/v1/sync", *I422, params={"cur_max_msg_id": "x"}),
    Case("sync: cursor negative", "GET", "/v1/sync", *I422, params={"cur_max_msg_id": "-1"}),
    Case("sync: cursor empty", "GET", "/v1/sync", *I422, params={"cur_max_msg_id": ""}),
    Case("sync: limit 0", "GET", "/v1/sync", *I422, params={"limit": "0"}),
    Case("sync: limit 1001", "GET", "/v1/sync", *I422, params={"limit": "1001"}),
    Case("sync: limit not a number", "GET", "/v1/sync", *I422, params={"limit": "ten"}),
    Case("ack: cursor missing", "POST", "/v1/sync/ack", *I422, json={}),
    Case("ack: cursor malformed", "POST", "/v1/sync/ack", *I422,
         json={"cur_max_msg_id": "1e3"}),
    # --- conversations
    Case("history: id malformed", "GET", "/v1/conversations/x:1/messages", *I422),
    Case("history: id not canonical", "GET", "/v1/conversations/g:0{group}/messages", *I422),
    Case("history: direct id reversed", "GET", "/v1/conversations/{reversed}/messages", *NF),
    Case("history: not a participant", "GET", "/v1/conversations/{direct}/messages", *FB,
         as_user="carol"),
    Case("history: not a group member", "GET", "/v1/conversations/g:{group}/messages", *FB,
         as_user="carol"),
    Case("history: before malformed", "GET", "/v1/conversations/{direct}/messages", *I422,
         params={"before": "x"}),
    Case("history: limit 0", "GET", "/v1/conversations/{direct}/messages", *I422,
         params={"limit": "0"}),
    Case("history: limit 201", "GET", "/v1/conversations/{direct}/messages", *I422,
         params={"limit": "201"}),
    Case("read: id malformed", "POST", "/v1/conversations/d:1/read", *I422,
         json={"up_to_msg_id": "{msg}"}),
    Case("read: up_to missing", "POST", "/v1/conversations/{direct}/read", *I422, json={}),
    Case("read: up_to unknown", "POST", "/v1/conversations/{direct}/read", *NF,
         json={"up_to_msg_id": "424242"}),
    Case("read: not a participant", "POST", "/v1/conversations/{direct}/read", *FB,
         json={"up_to_msg_id": "{msg}"}, as_user="carol"),
    Case("mute: until not a time", "POST", "/v1/conversations/{direct}/mute", *I422,
         json={"until": "tomorrow"}),
    Case("mute: until without a zone", "POST", "/v1/conversations/{direct}/mute", *I422,
         json={"until": "2030-01-01T00:00:00"}),
    Case("mute: not a participant", "POST", "/v1/conversations/{direct}/mute", *FB,
         json={"until": None}, as_user="carol"),
    # --- presence
    Case("presence: user_ids missing", "GET", "/v1/presence", *I422),
    Case("presence: user_ids empty", "GET", "/v1/presence", *I422, params={"user_ids": ""}),
    Case("presence: user id malformed", "GET", "/v1/presence", *I422,
         params={"user_ids": "1,x"}),
    Case("presence: over 200 ids", "GET", "/v1/presence", *I422,
         params={"user_ids": ",".join(str(n) for n in range(1, 202))}),
]


@pytest.fixture(scope="module")
def world(server: MessengerProcess) -> Iterator[World]:
    with server.client() as client:
        alice, bob, carol = (new_account(client) for _ in range(3))
        r = client.post("/v1/groups", json={"name": "g", "member_ids": [bob.user_id]},
                        headers=alice.headers)
        assert r.status_code == 201, r.text
        sent = send(client, alice, bob.user_id, "hello", uuid.uuid4().hex)
        assert sent.status_code == 201, sent.text
        yield World(alice, bob, carol, r.json()["group_id"], sent.json()["msg_id"])


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_each_rule_answers_the_same_4xx_on_every_backend(
    case: Case, world: World, client: httpx.Client
) -> None:
    r = case.request(client, world)
    assert r.status_code == case.status, r.text
    error = r.json()["error"]
    assert error["code"] == case.code, r.text
    assert isinstance(error["message"], str) and error["message"], r.text
