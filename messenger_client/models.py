"""What the API returns, as typed values: ids are ``int`` here and decimal strings on the wire.

Every model keeps the JSON it came from (``raw``) so nothing the server adds is lost, and
``to_json()`` gives it back exactly (the CLI prints it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from messenger_client.errors import ProtocolError

Json = dict[str, Any]


def parse_id(value: object, name: str = "id") -> int:
    """An id from the wire (decimal string or integer)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProtocolError(f"{name} is not an id: {value!r}")
    try:
        parsed = int(value)
    except ValueError:
        raise ProtocolError(f"{name} is not an id: {value!r}") from None
    if parsed < 0:
        raise ProtocolError(f"{name} is negative: {value!r}")
    return parsed


def _opt_id(data: Mapping[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else parse_id(data[key], key)


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key} is not a string: {value!r}")
    return value


def parse_time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(_str(data, key))
    except ValueError:
        raise ProtocolError(f"{key} is not an RFC 3339 time: {value!r}") from None


def _obj(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ProtocolError(f"{what} is not a JSON object: {data!r}")
    return data


@dataclass(frozen=True, slots=True)
class Attachment:
    """An uploaded file, as an upload answers it or a message carries it (``width``,
    ``height`` and ``thumbnail_id`` for images)."""

    attachment_id: int
    name: str
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None
    thumbnail_id: int | None = None
    raw: Json = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @classmethod
    def from_json(cls, data: object) -> Attachment:
        d = _obj(data, "attachment")
        size = d.get("size")
        if not isinstance(size, int):
            raise ProtocolError(f"attachment: 'size' must be an integer, got {size!r}")
        dims = [d.get(k) if isinstance(d.get(k), int) else None for k in ("width", "height")]
        return cls(attachment_id=parse_id(d.get("attachment_id"), "attachment_id"),
                   name=_str(d, "name"), size=size, content_type=_str(d, "content_type"),
                   width=dims[0], height=dims[1], thumbnail_id=_opt_id(d, "thumbnail_id"),
                   raw=dict(d))

    def to_json(self) -> Json:
        return dict(self.raw)


def _attachments(d: Mapping[str, Any]) -> tuple[Attachment, ...]:
    items = d.get("attachments")
    return tuple(Attachment.from_json(a) for a in items) if isinstance(items, list) else ()


@dataclass(frozen=True, slots=True)
class Entry:
    """One inbox entry: ``id`` is its position in this user's inbox (the sync cursor)."""

    id: int
    kind: str
    msg_id: int
    conversation_id: str
    sender_id: int
    sender_device_id: int
    created_at: datetime | None
    body: str | None = None
    up_to_msg_id: int | None = None
    scope: str | None = None
    group: Json | None = None
    attachments: tuple[Attachment, ...] = ()
    raw: Json = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: object) -> Entry:
        d = _obj(data, "entry")
        group = d.get("group")
        return cls(
            id=parse_id(d.get("id")), kind=_str(d, "kind"), msg_id=parse_id(d.get("msg_id")),
            conversation_id=_str(d, "conversation_id"),
            sender_id=parse_id(d.get("sender_id"), "sender_id"),
            sender_device_id=parse_id(d.get("sender_device_id"), "sender_device_id"),
            created_at=parse_time(d, "created_at"),
            body=d["body"] if isinstance(d.get("body"), str) else None,
            up_to_msg_id=_opt_id(d, "up_to_msg_id"),
            scope=d["scope"] if isinstance(d.get("scope"), str) else None,
            group=dict(group) if isinstance(group, Mapping) else None,
            attachments=_attachments(d),
            raw=dict(d),
        )

    def to_json(self) -> Json:
        return dict(self.raw)


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer to a send: the message's id, its position in the sender's inbox."""

    client_msg_id: str
    msg_id: int
    id: int
    conversation_id: str
    created_at: datetime | None = None
    raw: Json = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: object, client_msg_id: str | None = None) -> Receipt:
        d = _obj(data, "receipt")
        raw = {k: v for k, v in d.items() if k not in ("op", "ref")}  # a `sent` frame's
        return cls(client_msg_id if client_msg_id is not None else _str(d, "client_msg_id"),
                   parse_id(d.get("msg_id"), "msg_id"), parse_id(d.get("id")),
                   _str(d, "conversation_id"), parse_time(d, "created_at"), raw)

    def to_json(self) -> Json:
        return {**self.raw, "client_msg_id": self.client_msg_id}


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    display_name: str | None = None

    @classmethod
    def from_json(cls, data: object) -> User:
        d = _obj(data, "user")
        name = d.get("display_name")
        return cls(parse_id(d.get("user_id"), "user_id"), _str(d, "username"),
                   name if isinstance(name, str) else None)


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in device: what login returns and the profile keeps."""

    server_url: str
    username: str
    user_id: int
    device_id: int
    token: str


@dataclass(frozen=True, slots=True)
class Group:
    group_id: int
    name: str
    owner_id: int
    member_ids: tuple[int, ...]

    @classmethod
    def from_json(cls, data: object) -> Group:
        d = _obj(data, "group")
        members = d.get("member_ids")
        if not isinstance(members, list):
            raise ProtocolError(f"member_ids is not a list: {members!r}")
        return cls(parse_id(d.get("group_id"), "group_id"), _str(d, "name"),
                   parse_id(d.get("owner_id"), "owner_id"),
                   tuple(parse_id(m, "member_ids") for m in members))


@dataclass(frozen=True, slots=True)
class Device:
    device_id: int
    device_name: str | None
    platform: str
    online: bool
    cur_max_msg_id: int
    push_provider: str | None
    last_seen: datetime | None

    @classmethod
    def from_json(cls, data: object) -> Device:
        d = _obj(data, "device")
        push = d.get("push")
        name = d.get("device_name")
        return cls(parse_id(d.get("device_id"), "device_id"),
                   name if isinstance(name, str) else None, _str(d, "platform"),
                   bool(d.get("online")), parse_id(d.get("cur_max_msg_id", 0), "cur_max_msg_id"),
                   str(push["provider"]) if isinstance(push, Mapping) else None,
                   parse_time(d, "last_seen"))


@dataclass(frozen=True, slots=True)
class Message:
    """A history item (also a conversation's ``last_message``)."""

    msg_id: int
    conversation_id: str
    sender_id: int
    sender_device_id: int
    body: str
    created_at: datetime | None
    attachments: tuple[Attachment, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> Message:
        d = _obj(data, "message")
        return cls(parse_id(d.get("msg_id"), "msg_id"), _str(d, "conversation_id"),
                   parse_id(d.get("sender_id"), "sender_id"),
                   parse_id(d.get("sender_device_id"), "sender_device_id"), _str(d, "body"),
                   parse_time(d, "created_at"), _attachments(d))


@dataclass(frozen=True, slots=True)
class Conversation:
    conversation_id: str
    kind: str
    title: str
    last_message: Message | None
    unread: int

    @classmethod
    def from_json(cls, data: object) -> Conversation:
        d = _obj(data, "conversation")
        last = d.get("last_message")
        unread = d.get("unread", 0)
        return cls(_str(d, "conversation_id"), _str(d, "kind"), str(d.get("title", "")),
                   Message.from_json(last) if last is not None else None,
                   unread if isinstance(unread, int) else 0)


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    """A user's status (``online``/``offline``) and when it was last seen."""

    user_id: int
    status: str
    last_seen: datetime | None

    @classmethod
    def from_json(cls, user_id: object, data: object) -> PresenceInfo:
        d = _obj(data, "presence")
        return cls(parse_id(user_id, "user_id"), _str(d, "status"), parse_time(d, "last_seen"))


def direct_conversation_id(user_a: int, user_b: int) -> str:
    """``d:<low>:<high>``: the id of the direct chat between two users."""
    low, high = sorted((user_a, user_b))
    return f"d:{low}:{high}"


def group_conversation_id(group_id: int) -> str:
    """``g:<group_id>``."""
    return f"g:{group_id}"
