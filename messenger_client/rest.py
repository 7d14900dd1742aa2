"""The REST half of the API over ``httpx``: one method per endpoint, typed results.

A non-2xx answer raises the typed error of its status carrying the server's ``code``; a
server that cannot be reached raises ``ConnectionFailed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from messenger_client.errors import ConnectionFailed, ProtocolError, error_from_response
from messenger_client.models import (
    Attachment,
    Conversation,
    Device,
    Entry,
    Group,
    Message,
    PresenceInfo,
    Receipt,
    Session,
    User,
    parse_id,
)

PLATFORMS = ("ios", "android", "web", "desktop", "cli")


@dataclass(frozen=True, slots=True)
class SyncPage:
    entries: list[Entry]
    cur_max_msg_id: int
    has_more: bool


def normalize_server_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"server URL must start with http:// or https://, got {url!r}")
    return url


def websocket_url(server_url: str) -> str:
    """The gateway's URL for a server URL (``http`` -> ``ws``, ``https`` -> ``wss``)."""
    return "ws" + server_url.removeprefix("http") + "/v1/ws"


class RestApi:
    """REST calls to one server, as one device once ``token`` is set."""

    def __init__(self, server_url: str, token: str | None = None, *, timeout_s: float = 30,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.server_url = normalize_server_url(server_url)
        self.token = token
        self._http = httpx.AsyncClient(base_url=self.server_url, timeout=timeout_s,
                                       transport=transport)

    async def __aenter__(self) -> RestApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, json: Any = None,
                    params: dict[str, Any] | None = None, content: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = await self._http.request(method, path, json=json, params=params,
                                         headers=headers, content=content)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{method} {self.server_url}{path}: {exc!r}") from exc
        if r.status_code >= 400:
            raise error_from_response(r.status_code, r.content, r.headers)
        if r.status_code == 204 or not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            raise ProtocolError(f"{method} {path}: answer is not JSON") from None

    # Auth and devices

    async def signup(self, username: str, password: str, display_name: str | None = None
                     ) -> User:
        body = {"username": username, "password": password, "display_name": display_name}
        return User.from_json(await self._call("POST", "/v1/auth/signup", json=body))

    async def login(self, username: str, password: str, *, platform: str = "cli",
                    device_id: int | None = None, device_name: str | None = None) -> Session:
        """Log a device in (``device_id``: this user's known device again); sets ``token``."""
        body: dict[str, Any] = {"username": username, "password": password,
                                "platform": platform, "device_name": device_name}
        if device_id is not None:
            body["device_id"] = str(device_id)
        data = await self._call("POST", "/v1/auth/login", json=body)
        self.token = str(data["access_token"])
        return Session(self.server_url, username, parse_id(data.get("user_id"), "user_id"),
                       parse_id(data.get("device_id"), "device_id"), self.token)

    async def devices(self) -> list[Device]:
        return [Device.from_json(d) for d in await self._call("GET", "/v1/devices")]

    async def set_push(self, device_id: int, provider: str, token: str,
                       topic: str | None = None) -> None:
        """Register this device's FCM (``fcm``) or APNs (``apns``) push token."""
        await self._call("PUT", f"/v1/devices/{device_id}/push",
                         json={"provider": provider, "token": token, "topic": topic})

    async def clear_push(self, device_id: int) -> None:
        await self._call("DELETE", f"/v1/devices/{device_id}/push")

    async def logout(self, device_id: int) -> None:
        """Log a device out (its token stops working at once)."""
        await self._call("DELETE", f"/v1/devices/{device_id}")

    # Users and groups

    async def me(self) -> User:
        return User.from_json(await self._call("GET", "/v1/users/me"))

    async def user(self, user_id: int) -> User:
        return User.from_json(await self._call("GET", f"/v1/users/{user_id}"))

    async def find_user(self, username: str) -> User:
        return User.from_json(await self._call("GET", "/v1/users",
                                               params={"username": username}))

    async def create_group(self, name: str, member_ids: Iterable[int],
                           client_group_id: str | None = None) -> Group:
        """A group owned by (and including) this user; ``client_group_id`` makes a retry
        answer the same group."""
        body = {"name": name, "member_ids": [str(m) for m in member_ids],
                "client_group_id": client_group_id}
        return Group.from_json(await self._call("POST", "/v1/groups", json=body))

    async def group(self, group_id: int) -> Group:
        return Group.from_json(await self._call("GET", f"/v1/groups/{group_id}"))

    async def add_members(self, group_id: int, user_ids: Iterable[int]) -> Group:
        body = {"user_ids": [str(u) for u in user_ids]}
        return Group.from_json(await self._call("POST", f"/v1/groups/{group_id}/members",
                                                json=body))

    async def remove_member(self, group_id: int, user_id: int) -> None:
        """The owner removes anyone; a member removes itself (leaves)."""
        await self._call("DELETE", f"/v1/groups/{group_id}/members/{user_id}")

    # Messages and conversations

    async def send(self, client_msg_id: str, body: str, *, to_user: int | None = None,
                   to_group: int | None = None, attachments: Iterable[int] = ()) -> Receipt:
        """One send over REST (no outbox: the caller retries with the same id);
        ``attachments``: ids of this user's uploads (``body`` may then be empty)."""
        payload: dict[str, Any] = {"client_msg_id": client_msg_id, "body": body,
                                   "attachments": [str(a) for a in attachments]}
        if to_user is not None:
            payload["to_user"] = str(to_user)
        if to_group is not None:
            payload["to_group"] = str(to_group)
        data = await self._call("POST", "/v1/messages", json=payload)
        return Receipt.from_json(data, client_msg_id)

    # Attachments

    async def upload(self, source: Path | bytes, name: str | None = None) -> Attachment:
        """Upload a file (streamed from disk) or bytes; ``name`` defaults to the file's."""
        if isinstance(source, bytes):
            return Attachment.from_json(await self._call(
                "POST", "/v1/attachments", params={"name": name or "file"}, content=source))
        return Attachment.from_json(await self._call(
            "POST", "/v1/attachments", params={"name": name or source.name},
            content=_file_chunks(source)))

    async def attachment(self, attachment_id: int) -> Attachment:
        """An attachment's metadata (its uploader, or a reader of a message carrying it)."""
        return Attachment.from_json(await self._call("GET", f"/v1/attachments/{attachment_id}"))

    async def download(self, attachment_id: int, target: Path | BinaryIO | None = None
                       ) -> bytes:
        """An attachment's bytes; with ``target`` (a file path, or a binary stream such as
        ``sys.stdout.buffer``) they are streamed into it instead (and ``b""`` returned)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        path = f"/v1/attachments/{attachment_id}/content"
        try:
            async with self._http.stream("GET", path, headers=headers) as r:
                if r.status_code >= 400:
                    raise error_from_response(r.status_code, await r.aread(), r.headers)
                if target is None:
                    return await r.aread()
                with (target.open("wb") if isinstance(target, Path)  # noqa: ASYNC230
                      else contextlib.nullcontext(target)) as out:  # (small writes)
                    async for chunk in r.aiter_bytes():
                        out.write(chunk)
                return b""
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"GET {self.server_url}{path}: {exc!r}") from exc

    async def delete_message(self, msg_id: int, scope: str = "me") -> None:
        """Delete for ``me`` or, as its sender within 24 h, for ``everyone``."""
        await self._call("DELETE", f"/v1/messages/{msg_id}", params={"scope": scope})

    async def conversations(self) -> list[Conversation]:
        return [Conversation.from_json(c) for c in await self._call("GET", "/v1/conversations")]

    async def history(self, conversation_id: str, before: int | None = None, limit: int = 50
                      ) -> list[Message]:
        """One page of history before ``before`` (a msg_id), newest first."""
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = str(before)
        items = await self._call("GET", f"/v1/conversations/{conversation_id}/messages",
                                 params=params)
        return [Message.from_json(m) for m in items]

    async def history_pages(self, conversation_id: str, page_size: int = 50
                            ) -> AsyncIterator[list[Message]]:
        """Every page of history, newest first, until the oldest message."""
        before: int | None = None
        while True:
            page = await self.history(conversation_id, before, page_size)
            if page:
                yield page
            if len(page) < page_size:
                return
            before = page[-1].msg_id

    async def mark_read(self, conversation_id: str, up_to_msg_id: int) -> None:
        await self._call("POST", f"/v1/conversations/{conversation_id}/read",
                         json={"up_to_msg_id": str(up_to_msg_id)})

    async def mute(self, conversation_id: str, until: datetime | None = None) -> None:
        """No pushes for the conversation until ``until`` (None: forever; past: unmute)."""
        await self._call("POST", f"/v1/conversations/{conversation_id}/mute",
                         json={"until": until.isoformat() if until is not None else None})

    async def presence(self, user_ids: Iterable[int]) -> dict[int, PresenceInfo]:
        data = await self._call("GET", "/v1/presence",
                                params={"user_ids": ",".join(str(u) for u in user_ids)})
        return {info.user_id: info for info in
                (PresenceInfo.from_json(uid, value) for uid, value in data.items())}

    # Sync

    async def sync(self, cursor: int, limit: int = 200) -> SyncPage:
        """Entries after ``cursor`` (at most ``limit``), oldest first."""
        data = await self._call("GET", "/v1/sync",
                                params={"cur_max_msg_id": str(cursor), "limit": limit})
        return SyncPage([Entry.from_json(e) for e in data["entries"]],
                        parse_id(data["cur_max_msg_id"], "cur_max_msg_id"),
                        bool(data["has_more"]))

    async def ack(self, cursor: int) -> int:
        """Tell the server this device applied everything up to ``cursor``."""
        data = await self._call("POST", "/v1/sync/ack", json={"cur_max_msg_id": str(cursor)})
        return parse_id(data["cur_max_msg_id"], "cur_max_msg_id")


async def _file_chunks(path: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """A file's bytes read on a worker thread, chunk by chunk (an upload never holds it)."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk
    finally:
        handle.close()
