"""The load generator's side of the client API: accounts, groups, sockets (aiohttp).

Set-up calls are few and run before any measured step; the measured traffic lives in
``bench.load.worker``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp

PASSWORD = "load-generator-password"  # noqa: S105 - accounts made by and for the benchmark
SETUP_CONCURRENCY = 4  # signup and login hash with scrypt: a few at a time is the server's pace
GROUP_BATCH = 49  # members per call (the production store seeds each new inbox at once)


@dataclass(frozen=True, slots=True)
class Member:
    """A user with one logged-in device: what a socket or a REST send needs."""

    user_id: str
    device_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class SetupError(RuntimeError):
    """The server refused a set-up call."""


async def _call(session: aiohttp.ClientSession, method: str, url: str,
                **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    async with session.request(method, url, **kwargs) as response:
        text = await response.text()
        if response.status >= 300:
            raise SetupError(f"{method} {url}: {response.status} {text[:300]}")
        data: dict[str, Any] = json.loads(text) if text else {}
        return data


async def new_member(session: aiohttp.ClientSession, base_url: str, prefix: str) -> Member:
    """Sign up a fresh user and log one device in."""
    username = f"{prefix}{secrets.token_hex(5)}"
    await _call(session, "POST", f"{base_url}/v1/auth/signup",
                json={"username": username, "password": PASSWORD})
    data = await _call(session, "POST", f"{base_url}/v1/auth/login",
                       json={"username": username, "password": PASSWORD, "platform": "cli"})
    return Member(data["user_id"], data["device_id"], data["access_token"])


async def new_members(base_url: str, count: int, prefix: str = "lg") -> list[Member]:
    """``count`` fresh users, a few signed up at a time."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    async with aiohttp.ClientSession() as session:

        async def one() -> Member:
            async with gate:
                return await new_member(session, base_url, prefix)

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def new_group(base_url: str, owner: Member, others: list[Member]) -> str:
    """A group of ``owner`` and ``others`` (made in batches); its id."""
    async with aiohttp.ClientSession(headers=owner.headers) as session:
        ids = [m.user_id for m in others]
        group = await _call(session, "POST", f"{base_url}/v1/groups",
                            json={"name": "load", "member_ids": ids[:GROUP_BATCH]})
        group_id = str(group["group_id"])
        for start in range(GROUP_BATCH, len(ids), GROUP_BATCH):
            await _call(session, "POST", f"{base_url}/v1/groups/{group_id}/members",
                        json={"user_ids": ids[start:start + GROUP_BATCH]})
        return group_id


HELLO_TIMEOUT_S = 30.0


async def open_socket(session: aiohttp.ClientSession, ws_url: str, member: Member
                      ) -> tuple[aiohttp.ClientWebSocketResponse, int]:  # fmt: skip
    """A socket past its ``hello`` frame, and the heartbeat interval (ms) it announced."""
    ws = await session.ws_connect(ws_url, headers=member.headers, autoping=True,
                                  max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=5))
    try:
        message = await ws.receive(HELLO_TIMEOUT_S)
        hello = json.loads(message.data) if message.type == aiohttp.WSMsgType.TEXT else {}
        if hello.get("op") != "hello":
            raise SetupError(f"expected hello, got {message.type} {str(message.data)[:200]}")
    except BaseException:
        await ws.close()
        raise
    return ws, int(hello["heartbeat_interval_ms"])


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to the hard limit (many sockets); the new limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
