"""Response bodies of the REST API (pydantic), for OpenAPI clients and runtime checks.

The JSON is built by ``gateway.wire`` (shared with the WebSocket frames) and validated into
these models, which FastAPI then serialises in pydantic's Rust core. Ids are 64-bit integers
written as decimal strings; times are RFC 3339 UTC with milliseconds. Fields typed
``X | SkipJsonSchema[None] = None`` are left out of the JSON when unset (routes answering
them serialise with ``exclude_unset``), never sent as null.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

IdStr = Annotated[str, Field(description="a 64-bit id as a decimal string",
                             examples=["251623048183283712"])]
Time = Annotated[str, Field(description="RFC 3339 UTC with milliseconds",
                            examples=["2025-03-01T12:00:00.123Z"])]
ConversationId = Annotated[str, Field(
    description="'d:<low user id>:<high user id>' for a direct chat, 'g:<group id>' for a group",
    examples=["d:251623048183283712:251623048183283999"])]


def _open_schema(schema: dict[str, Any]) -> None:
    # Unknown fields are refused at run time (a field the server adds without documenting it
    # fails its tests), but clients are told to tolerate new ones: fields may be added.
    schema.pop("additionalProperties", None)


class Out(BaseModel):
    """A response body: its fields are exactly what the server sends."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_open_schema)


class ErrorBody(Out):
    code: str = Field(description="snake_case error code, e.g. 'not_found', 'rate_limited'")
    message: str = Field(description="human-readable explanation")


class ErrorOut(Out):
    """Every 4xx/5xx answer: ``{"error": {"code", "message"}}``."""

    error: ErrorBody


class SignupOut(Out):
    user_id: IdStr
    username: str


class LoginOut(Out):
    access_token: str = Field(description="JWT for 'Authorization: Bearer' and the WebSocket")
    token_type: Literal["bearer"]
    expires_in: int = Field(description="seconds until the token expires")
    user_id: IdStr
    device_id: IdStr


class DevicePushOut(Out):
    provider: Literal["fcm", "apns"]


class DeviceOut(Out):
    device_id: IdStr
    device_name: str
    platform: Literal["ios", "android", "web", "desktop", "cli"]
    online: bool = Field(description="holds a live WebSocket on any node now")
    cur_max_msg_id: IdStr = Field(description="the device's acknowledged sync cursor")
    push: DevicePushOut | None = Field(description="the registered push provider, or null")
    last_seen: Time | None = Field(description="now when online; null if never connected")


class UserOut(Out):
    user_id: IdStr
    username: str
    display_name: str


class GroupOut(Out):
    group_id: IdStr
    name: str
    owner_id: IdStr
    member_ids: list[IdStr] = Field(description="current members in join order")


class ReceiptOut(Out):
    """The answer to a send (also the fields of the WebSocket ``sent`` frame)."""

    msg_id: IdStr
    id: IdStr = Field(description="the message's position in the sender's own inbox")
    conversation_id: ConversationId
    created_at: Time


class AttachmentRefOut(Out):
    """An attachment of a message, as the server measured it at upload."""

    attachment_id: IdStr = Field(description="fetch it at /v1/attachments/{attachment_id}")
    name: str = Field(description="the file name given at upload")
    size: int = Field(ge=1, description="bytes")
    content_type: str = Field(description="sniffed from the bytes at upload, e.g. image/jpeg, "
                                          "application/pdf, application/octet-stream")
    width: int | SkipJsonSchema[None] = Field(default=None, description="images: pixels")
    height: int | SkipJsonSchema[None] = Field(default=None, description="images: pixels")
    thumbnail_id: IdStr | SkipJsonSchema[None] = Field(
        default=None, description="images: a small JPEG preview, itself an attachment id")


class GroupEventOut(Out):
    """The ``group`` of a ``group_event`` entry: the group after the change."""

    group_id: IdStr
    name: str
    owner_id: IdStr
    member_ids: list[IdStr]
    event: Literal["created", "members_added", "member_removed"]
    user_ids: list[IdStr] = Field(description="who joined, or who was removed or left")


class EntryOut(Out):
    """One inbox entry; optional fields are present only on the kinds that carry them."""

    id: IdStr = Field(description="the entry's position in this inbox (the sync cursor)")
    kind: Literal["message", "delete", "read", "group_event"]
    msg_id: IdStr = Field(description="message: its id; delete: the deleted message; read: "
                                      "up_to_msg_id; group_event: a fresh id")
    conversation_id: ConversationId
    sender_id: IdStr
    sender_device_id: IdStr
    created_at: Time
    body: str | SkipJsonSchema[None] = Field(default=None, description="kind message")
    up_to_msg_id: IdStr | SkipJsonSchema[None] = Field(default=None, description="kind read")
    scope: Literal["me", "everyone"] | SkipJsonSchema[None] = Field(
        default=None, description="kind delete")
    group: GroupEventOut | SkipJsonSchema[None] = Field(default=None,
                                                        description="kind group_event")
    attachments: list[AttachmentRefOut] | SkipJsonSchema[None] = Field(
        default=None, description="kind message, when it has attachments")


class SyncOut(Out):
    entries: list[EntryOut] = Field(description="entries after the cursor, in inbox order")
    cur_max_msg_id: IdStr = Field(description="the largest id returned, else the cursor sent")
    has_more: bool = Field(description="the inbox holds more entries after this page")


class AckOut(Out):
    cur_max_msg_id: IdStr = Field(description="the device's cursor after the ack (never "
                                              "moves back)")


class MessageOut(Out):
    """A history item, or a conversation's ``last_message``."""

    msg_id: IdStr
    conversation_id: ConversationId
    sender_id: IdStr
    sender_device_id: IdStr
    body: str = Field(description="the text; empty only for a message of attachments alone")
    created_at: Time
    attachments: list[AttachmentRefOut] = Field(description="empty when it has none")


class ConversationOut(Out):
    conversation_id: ConversationId
    kind: Literal["direct", "group"]
    title: str = Field(description="the peer's display name, or the group's name")
    last_message: MessageOut | None
    preview: str | None = Field(description="what stands for the last message in a list: its "
                                            "body, else 'Photo', '2 photos', 'File: <name>', "
                                            "'3 files' or '3 attachments'; null without one")
    unread: int = Field(ge=0, description="messages from others after the read marker")


class AttachmentOut(Out):
    """An uploaded attachment (what the uploader and readers of its messages may fetch)."""

    attachment_id: IdStr
    name: str
    size: int = Field(ge=1, description="bytes (of an image: after its metadata was removed)")
    content_type: str = Field(description="sniffed from the bytes, never taken from the client")
    width: int | SkipJsonSchema[None] = Field(default=None, description="images: pixels")
    height: int | SkipJsonSchema[None] = Field(default=None, description="images: pixels")
    thumbnail_id: IdStr | SkipJsonSchema[None] = Field(
        default=None, description="images: a JPEG of at most 320x320, an attachment itself")
    sha256: str = Field(description="SHA-256 of the bytes, hex; also the ETag")
    created_at: Time


class UploadOut(Out):
    """A presigned upload: send the bytes as ``method`` to ``url`` with ``headers``, then
    ``POST /v1/attachments/{attachment_id}/complete``."""

    attachment_id: IdStr
    url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expires_at: Time


class LinkOut(Out):
    """Where to download an attachment's bytes until ``expires_at``."""

    url: str = Field(description="a presigned object-store URL (no token needed), or this "
                                 "server's /content path (send the bearer token)")
    direct: bool = Field(description="true for a presigned object-store URL")
    expires_at: Time


class PresenceOut(Out):
    status: Literal["online", "offline"]
    last_seen: Time | None = Field(description="now when online; null if never connected")


class PresenceMapOut(RootModel[dict[IdStr, PresenceOut]]):
    """``{"<user_id>": {status, last_seen}}`` for every distinct id asked for."""


class HealthOut(Out):
    status: Literal["ok"]


class ReadyOut(Out):
    ready: bool
    checks: dict[str, str] = Field(
        description="each store ('inbox'; or 'redis', 'cassandra' and 'worker_id': a Snowflake "
                    "worker id is leased): 'ok' or 'unavailable' (the reason goes to the log); "
                    "only {'node': 'draining'} while the node shuts down")
