"""Per-client limits of signups, logins and WebSocket upgrades over real servers.

Each limit is proved on both backends: the embedded default (one process, memory limiter) and
production, where two server processes share the Redis limiter and every test alternates its
requests between them, so one node's count must hold on the other. Limits are small and
refill once in 50 s, so no refusal a test expects is refilled away; waiting out
``Retry-After`` is tested on servers that refill every second.

Every request names its client in ``X-Forwarded-For``, which the servers honour from loopback
(``MESSENGER_FORWARDED_ALLOW_IPS`` defaults to it, like uvicorn): each test gets addresses of
its own, and these servers never touch the buckets of 127.0.0.1 that other test servers on the
same Redis count their signups in.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.api.backends import production_env
from tests.api.server import MessengerProcess

SLOW_RATE = 0.02  # one token per 50 s
USER_FAILURES, ADDRESS_FAILURES, SIGNUPS, UPGRADES = 3, 6, 4, 3
LIMITS = {
    "MESSENGER_LOGIN_FAILURES_PER_USER_BURST": str(USER_FAILURES),
    "MESSENGER_LOGIN_FAILURES_PER_ADDRESS_BURST": str(ADDRESS_FAILURES),
    "MESSENGER_SIGNUPS_PER_ADDRESS_BURST": str(SIGNUPS),
    "MESSENGER_UPGRADES_PER_ADDRESS_BURST": str(UPGRADES),
    **{f"MESSENGER_{name}_RATE_PER_S": str(SLOW_RATE) for name in (
        "LOGIN_FAILURES_PER_USER", "LOGIN_FAILURES_PER_ADDRESS", "SIGNUPS_PER_ADDRESS",
        "UPGRADES_PER_ADDRESS")},
}
FAST_RATE = 1.0
REFILLING = {"MESSENGER_LOGIN_FAILURES_PER_USER_BURST": "2",
             "MESSENGER_LOGIN_FAILURES_PER_USER_RATE_PER_S": str(FAST_RATE)}
PASSWORD = "correct-horse"  # noqa: S105 (a test account's password)
MAX_TRIES_UNTIL_REFUSED = 20


def _start(tmp: Path, env: dict[str, str], count: int) -> list[MessengerProcess]:
    nodes = [MessengerProcess(tmp / f"node{n}", env) for n in range(count)]
    for node in nodes:
        node.start()
    return nodes


@pytest.fixture(scope="module", params=["embedded", "production"])
def backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """The backend's name and environment (one keyspace for the module's servers)."""
    if request.param == "embedded":
        return "embedded", {}
    env = production_env(request.getfixturevalue("redis_server"),
                         request.getfixturevalue("cassandra_server"), "throttle")
    return "production", env


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, backend: tuple[str, dict[str, str]]
          ) -> Iterator[list[MessengerProcess]]:
    """The backend's servers with small limits: one embedded, or two sharing Redis."""
    name, env = backend
    started = _start(tmp_path_factory.mktemp(f"limited-{name}"), {**LIMITS, **env},
                     1 if name == "embedded" else 2)
    yield started
    for node in started:
        node.stop()


@pytest.fixture(scope="module")
def refilling(tmp_path_factory: pytest.TempPathFactory, backend: tuple[str, dict[str, str]]
              ) -> Iterator[MessengerProcess]:
    """A server allowing 2 failed logins per username, and one more per second."""
    name, env = backend
    [node] = _start(tmp_path_factory.mktemp(f"refilling-{name}"), {**REFILLING, **env}, 1)
    yield node
    node.stop()


def _address() -> str:
    """A client address no other test uses (TEST-NET and private ranges are never real)."""
    n = uuid.uuid4().int
    return f"10.{n % 256}.{(n >> 8) % 256}.{(n >> 16) % 256}"


def _username() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def _post(node: MessengerProcess, address: str, path: str, body: dict[str, Any]
          ) -> httpx.Response:
    return httpx.post(f"{node.url}{path}", json=body, timeout=30,
                      headers={"X-Forwarded-For": address})


def _signup(node: MessengerProcess, address: str, username: str | None = None
            ) -> httpx.Response:
    return _post(node, address, "/v1/auth/signup",
                 {"username": username or _username(), "password": PASSWORD})


def _login(node: MessengerProcess, address: str, username: str, password: str = PASSWORD
           ) -> httpx.Response:
    return _post(node, address, "/v1/auth/login",
                 {"username": username, "password": password, "platform": "cli"})


def _user(node: MessengerProcess) -> str:
    """A new user, signed up from an address of its own."""
    username = _username()
    assert _signup(node, _address(), username).status_code == 201
    return username


def _token(node: MessengerProcess) -> str:
    r = _login(node, _address(), _user(node))
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _refused(status: int, headers: httpx.Headers | Any, body: dict[str, Any],
             rate: float = SLOW_RATE) -> int:
    """Checks a 429 ``rate_limited`` answer; its ``Retry-After`` (whole seconds, at most the
    time one token takes)."""
    assert status == 429, body
    assert body["error"]["code"] == "rate_limited" and body["error"]["message"]
    seconds = int(headers["Retry-After"])
    assert 1 <= seconds <= math.ceil(1 / rate)
    return seconds


def _refused_http(r: httpx.Response, rate: float = SLOW_RATE) -> int:
    return _refused(r.status_code, r.headers, r.json(), rate)


def test_signups_are_limited_per_address(nodes: list[MessengerProcess]) -> None:
    address = _address()
    for n in range(SIGNUPS):
        assert _signup(nodes[n % len(nodes)], address).status_code == 201
    for node in nodes:
        _refused_http(_signup(node, address))
    assert _signup(nodes[-1], _address()).status_code == 201  # another address is not


def test_wrong_passwords_are_throttled_per_username_and_right_ones_do_not_count(
    nodes: list[MessengerProcess],
) -> None:
    alice, address = _user(nodes[0]), _address()
    for n in range(USER_FAILURES + 3):  # many devices logging in: successes are not counted
        assert _login(nodes[n % len(nodes)], address, alice).status_code == 200
    for n in range(USER_FAILURES):
        r = _login(nodes[n % len(nodes)], address, alice, "wrong-password")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    for node in nodes:
        _refused_http(_login(node, address, alice, "wrong-password"))
        _refused_http(_login(node, address, alice))  # refused before the password is checked
        _refused_http(_login(node, _address(), alice))  # from anywhere: it is per username
    assert _login(nodes[-1], address, _user(nodes[0])).status_code == 200  # others log in


def test_failed_logins_are_throttled_per_address(nodes: list[MessengerProcess]) -> None:
    address, bob = _address(), _user(nodes[0])
    for n in range(ADDRESS_FAILURES):  # guessing across usernames, as credential stuffing does
        r = _login(nodes[n % len(nodes)], address, _username(), "wrong-password")
        assert r.status_code == 401
    for node in nodes:
        _refused_http(_login(node, address, bob))
    assert _login(nodes[-1], _address(), bob).status_code == 200


async def test_websocket_upgrades_are_limited_per_address(nodes: list[MessengerProcess]
                                                         ) -> None:
    token, address = _token(nodes[0]), _address()
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}
    for n in range(UPGRADES):
        ws = await connect(nodes[n % len(nodes)].ws_url, additional_headers=headers)
        await ws.close()
    for node in nodes:
        with pytest.raises(InvalidStatus) as info:
            await connect(node.ws_url, additional_headers=headers)
        response = info.value.response
        _refused(response.status_code, response.headers, json.loads(response.body))
    other = {**headers, "X-Forwarded-For": _address()}
    ws = await connect(nodes[-1].ws_url, additional_headers=other)
    await ws.close()


def test_a_correct_password_works_after_the_window(refilling: MessengerProcess) -> None:
    alice, address = _user(refilling), _address()
    for _ in range(MAX_TRIES_UNTIL_REFUSED):
        refused = _login(refilling, address, alice, "wrong-password")
        if refused.status_code == 429:
            break
        assert refused.status_code == 401
    wait = _refused_http(refused, FAST_RATE)
    time.sleep(wait)  # the server's own clock refills the bucket
    assert _login(refilling, address, alice).status_code == 200


def test_an_untrusted_peer_cannot_choose_its_address(tmp_path: Path) -> None:
    """With ``MESSENGER_FORWARDED_ALLOW_IPS`` empty, ``X-Forwarded-For`` is ignored: every
    request counts against the peer's own address (the embedded memory limiter, in a process
    of its own, so no other server's 127.0.0.1 buckets are touched)."""
    env = {"MESSENGER_FORWARDED_ALLOW_IPS": "", "MESSENGER_SIGNUPS_PER_ADDRESS_BURST": "2",
           "MESSENGER_SIGNUPS_PER_ADDRESS_RATE_PER_S": str(SLOW_RATE)}
    [node] = _start(tmp_path, env, 1)
    try:
        for _ in range(2):
            assert _signup(node, _address()).status_code == 201
        _refused_http(_signup(node, _address()))
    finally:
        node.stop()
