"""Request bodies of the REST API (pydantic); ids accept decimal strings or integers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from inbox.core.errors import InvalidInput
from inbox.core.ids import parse_id


def _id(value: Any) -> int:
    if not isinstance(value, str | int):
        raise ValueError("must be an id (decimal string or integer)")
    try:
        return parse_id(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


ID_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]{1,19}$"},
              {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}],
    "description": "a 64-bit id: a decimal string (preferred: JavaScript numbers cannot hold "
                   "it) or an integer",
}
Id = Annotated[int, BeforeValidator(_id), WithJsonSchema(ID_SCHEMA)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _utf8_text(cls, value: Any) -> Any:
        # JSON's "\ud800" escape decodes to a lone surrogate, which no store can encode: refuse
        # it here (422) instead of failing later (500).
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode text (no lone surrogates)") from None
        return value


class SignupIn(Body):
    username: str = Field(description="3-32 characters of a-z 0-9 _ . - (unique)")
    password: str = Field(description="8..1024 characters")
    display_name: str | None = Field(default=None, description="1..64 characters; defaults "
                                                               "to the username")


class LoginIn(Body):
    username: str
    password: str
    platform: str = Field(description="ios, android, web, desktop or cli")
    device_id: Id | None = Field(default=None, description="log this known device of the "
                                                           "user in again")
    device_name: str | None = Field(default=None, description="cut to 64 characters; defaults "
                                                              "to the platform")


class PushIn(Body):
    provider: str = Field(description="fcm or apns")
    token: str = Field(description="the provider's device token, 1..4096 characters")
    topic: str | None = Field(default=None, description="APNs topic (bundle id) override")


class SendIn(Body):
    body: str = Field(default="", description="up to 16384 bytes of UTF-8; empty only with "
                                              "attachments")
    client_msg_id: str = Field(description="the client's idempotency key, 1..128 characters")
    to_user: Id | None = Field(default=None, description="exactly one of to_user, to_group")
    to_group: Id | None = None
    attachments: list[Id] = Field(default_factory=list, description="ids of the caller's "
                                  "uploads (at most 10); body may then be empty")


class UploadIn(Body):
    name: str = Field(description="the file name: 1..255 characters, no path")
    size: int = Field(description="the exact length in bytes the client will upload")


class AckIn(Body):
    cur_max_msg_id: Id


class MuteIn(Body):
    until: AwareDatetime | None = Field(default=None, description="RFC 3339 with offset; "
                                                                 "null: forever; past: unmute")


class GroupIn(Body):
    name: str
    member_ids: list[Id] = Field(default_factory=list)
    client_group_id: str | None = Field(default=None, description="idempotency key, 1..128 "
                                        "characters: a retry answers the same group")


class GroupMembersIn(Body):
    user_ids: list[Id]


class ReadIn(Body):
    up_to_msg_id: Id
