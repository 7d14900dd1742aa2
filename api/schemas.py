"""Request bodies of the REST API (pydantic); ids accept decimal strings or integers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from inbox.conversations import parse_id
from inbox.errors import InvalidInput


def _id(value: Any) -> int:
    if not isinstance(value, str | int):
        raise ValueError("must be an id (decimal string or integer)")
    try:
        return parse_id(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


Id = Annotated[int, BeforeValidator(_id)]


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
    username: str
    password: str
    display_name: str | None = None


class LoginIn(Body):
    username: str
    password: str
    platform: str
    device_id: Id | None = None
    device_name: str | None = None


class PushIn(Body):
    provider: str
    token: str
    topic: str | None = None


class SendIn(Body):
    body: str
    client_msg_id: str
    to_user: Id | None = None
    to_group: Id | None = None


class AckIn(Body):
    cur_max_msg_id: Id


class MuteIn(Body):
    until: AwareDatetime | None = None


class GroupIn(Body):
    name: str
    member_ids: list[Id] = Field(default_factory=list)
    client_group_id: str | None = None  # idempotency key: a retry answers the same group


class GroupMembersIn(Body):
    user_ids: list[Id]


class ReadIn(Body):
    up_to_msg_id: Id
