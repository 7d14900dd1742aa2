"""Request bodies of the REST API (pydantic); ids accept decimal strings or integers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict

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
