"""WebSocket frames: decode the server's, build the client's. No I/O.

Unknown ops decode to ``Unknown`` (a newer server may add frames; this client ignores them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from messenger_client.errors import ApiError, ProtocolError, error_from_frame
from messenger_client.events import Presence, Typing
from messenger_client.models import Entry, Json, Receipt, parse_id, parse_time


@dataclass(frozen=True, slots=True)
class Hello:
    session_id: str
    heartbeat_interval_ms: int


@dataclass(frozen=True, slots=True)
class Entries:
    entries: list[Entry]


@dataclass(frozen=True, slots=True)
class SyncStarted:
    """The server took our ``sync``: entries frames after this one follow its cursor."""

    cur_max_msg_id: int
    ref: str | None


@dataclass(frozen=True, slots=True)
class SentFrame:
    receipt: Receipt
    ref: str | None


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    error: ApiError
    ref: str | None


@dataclass(frozen=True, slots=True)
class Pong:
    ref: str | None


@dataclass(frozen=True, slots=True)
class GoAway:
    reconnect_after_ms: int


@dataclass(frozen=True, slots=True)
class Unknown:
    op: str


ServerFrame = (Hello | Entries | SyncStarted | SentFrame | ErrorFrame | Pong | GoAway | Presence
               | Typing | Unknown)


def decode(text: str | bytes) -> ServerFrame:
    """Decode one server frame; ``ProtocolError`` when it is not a frame of the contract."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ProtocolError(f"frame is not JSON: {text[:100]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("op"), str):
        raise ProtocolError(f"frame is not an object with an op: {text[:100]!r}")
    ref = data["ref"] if isinstance(data.get("ref"), str) else None
    decoder = _DECODERS.get(data["op"])
    return decoder(data, ref) if decoder is not None else Unknown(data["op"])


def _hello(d: Mapping[str, Any], ref: str | None) -> Hello:
    interval = d.get("heartbeat_interval_ms")
    if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
        raise ProtocolError(f"hello has no usable heartbeat_interval_ms: {interval!r}")
    return Hello(str(d.get("session_id", "")), interval)


def _entries(d: Mapping[str, Any], ref: str | None) -> Entries:
    items = d.get("entries")
    if not isinstance(items, list):
        raise ProtocolError("entries frame without an entries list")
    return Entries([Entry.from_json(e) for e in items])


def _goaway(d: Mapping[str, Any], ref: str | None) -> GoAway:
    after = d.get("reconnect_after_ms", 0)
    return GoAway(after if isinstance(after, int) and after >= 0 else 0)


def _presence(d: Mapping[str, Any], ref: str | None) -> Presence:
    return Presence(parse_id(d.get("user_id"), "user_id"), str(d.get("status", "")),
                    parse_time(d, "last_seen"))


def _typing(d: Mapping[str, Any], ref: str | None) -> Typing:
    return Typing(str(d.get("conversation_id", "")), parse_id(d.get("user_id"), "user_id"))


_DECODERS: dict[str, Any] = {
    "hello": _hello,
    "entries": _entries,
    "sync_started": lambda d, ref: SyncStarted(parse_id(d.get("cur_max_msg_id")), ref),
    "sent": lambda d, ref: SentFrame(Receipt.from_json(d), ref),
    "error": lambda d, ref: ErrorFrame(error_from_frame(d), ref),
    "pong": lambda d, ref: Pong(ref),
    "goaway": _goaway,
    "presence": _presence,
    "typing": _typing,
}


def encode(frame: Json) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def sync(cursor: int, ref: str | None = None) -> str:
    """Replay everything after ``cursor``, then stream live."""
    return encode(_with_ref({"op": "sync", "cur_max_msg_id": str(cursor)}, ref))


def send(client_msg_id: str, body: str, *, to_user: int | None, to_group: int | None,
         attachments: tuple[int, ...] = (), ref: str | None = None) -> str:
    """A message; ``attachments``: ids of the sender's uploads (left out when none)."""
    frame: Json = {"op": "send", "client_msg_id": client_msg_id, "body": body}
    if to_user is not None:
        frame["to_user"] = str(to_user)
    if to_group is not None:
        frame["to_group"] = str(to_group)
    if attachments:
        frame["attachments"] = [str(a) for a in attachments]
    return encode(_with_ref(frame, ref))


def ack(cursor: int) -> str:
    return encode({"op": "ack", "cur_max_msg_id": str(cursor)})


def typing(conversation_id: str) -> str:
    return encode({"op": "typing", "conversation_id": conversation_id})


def ping(ref: str | None = None) -> str:
    return encode(_with_ref({"op": "ping"}, ref))


def _with_ref(frame: Json, ref: str | None) -> Json:
    return {**frame, "ref": ref} if ref is not None else frame
