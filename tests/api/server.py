"""A real ``messenger serve`` in a subprocess on a free loopback port, plus a small client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.servers.redis_server import free_ports

NO_DRAIN_WINDOW = {"MESSENGER_DRAIN_WINDOW_S": "0"}
"""A stopped test server exits as soon as its sockets are drained, instead of serving out a
drain window; the drain's own tests set one."""


@dataclass
class Account:
    user_id: str
    device_id: str
    token: str
    username: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class MessengerProcess:
    """One server process; ``stop``/``kill`` and ``start`` again on the same port and data."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 port: int | None = None, log_level: str = "warning",
                 args: tuple[str, ...] = (), cwd: Path | None = None) -> None:
        """``args``: more flags for ``messenger serve`` (``--workers 2``); ``cwd``: the
        checkout whose code runs (default: this one)."""
        self.data_dir = data_dir
        self.args = args
        self.cwd = cwd
        self.log_level = log_level
        self.port = port or free_ports(1)[0]
        self.env = {**os.environ, "MESSENGER_DATA_DIR": str(data_dir), **NO_DRAIN_WINDOW,
                    **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def start(self, timeout_s: float = 30) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port),
                 "--log-level", self.log_level, *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@contextmanager
def messenger(tmp: Path, env: dict[str, str] | None = None, log_level: str = "warning"
              ) -> Iterator[MessengerProcess]:
    server = MessengerProcess(tmp / "data", env, log_level=log_level)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_account(client: httpx.Client, prefix: str = "u", platform: str = "cli",
                password: str = "correct-horse") -> Account:
    """Sign up a fresh user and log one device in."""
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    r = client.post("/v1/auth/signup", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    return login(client, username, password, platform)


def login(client: httpx.Client, username: str, password: str = "correct-horse",
          platform: str = "cli", device_id: str | None = None) -> Account:
    body: dict[str, Any] = {"username": username, "password": password, "platform": platform}
    if device_id is not None:
        body["device_id"] = device_id
    r = client.post("/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    return Account(data["user_id"], data["device_id"], data["access_token"], username)


def send(client: httpx.Client, sender: Account, to_user: str, body: str,
         client_msg_id: str | None = None) -> httpx.Response:
    return client.post(
        "/v1/messages",
        json={"to_user": to_user, "body": body, "client_msg_id": client_msg_id or uuid.uuid4().hex},
        headers=sender.headers,
    )


def sync_all(client: httpx.Client, account: Account, cursor: str = "0", limit: int = 200
             ) -> tuple[list[dict[str, Any]], str]:
    """Sync from ``cursor`` until ``has_more`` is false; every entry and the final cursor."""
    out: list[dict[str, Any]] = []
    while True:
        r = client.get("/v1/sync", params={"cur_max_msg_id": cursor, "limit": limit},
                       headers=account.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        out.extend(page["entries"])
        cursor = page["cur_max_msg_id"]
        if not page["has_more"]:
            return out, cursor


def sync_until_done(server: MessengerProcess, account: Account, done: threading.Event,
                    out: list[dict[str, Any]], limit: int) -> None:
    """Page through ``account``'s inbox from 0 while others write, appending to ``out``,
    until ``done`` was set before a page that had no more (run it in a thread)."""
    cursor = "0"
    with server.client() as c:
        while True:
            finished = done.is_set()
            r = c.get("/v1/sync", params={"cur_max_msg_id": cursor, "limit": limit},
                      headers=account.headers)
            page = r.json()
            out.extend(page["entries"])
            cursor = page["cur_max_msg_id"]
            if finished and not page["has_more"]:
                return
