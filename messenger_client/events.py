"""What ``Client.events()`` yields besides inbox ``Entry`` values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from messenger_client.errors import ApiError, MessengerError
from messenger_client.models import Entry, Receipt


@dataclass(frozen=True, slots=True)
class Presence:
    """A contact came online or went offline."""

    user_id: int
    status: str
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class Typing:
    """``user_id`` is typing in ``conversation_id`` (never stored; show it for a few seconds)."""

    conversation_id: str
    user_id: int


@dataclass(frozen=True, slots=True)
class Sent:
    """An outbox message was stored by the server (also for messages queued by an earlier run)."""

    receipt: Receipt


@dataclass(frozen=True, slots=True)
class SendFailed:
    """An outbox message was refused for good (not a participant, too large...) and dropped."""

    client_msg_id: str
    error: ApiError


@dataclass(frozen=True, slots=True)
class Connected:
    """A WebSocket is up and its sync has started."""

    session_id: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The WebSocket went away; the client reconnects after ``retry_in_s``."""

    code: int | None
    reason: str
    retry_in_s: float
    reconnect_after_ms: int | None = None
    """What the server's ``goaway`` asked for, if it sent one."""


@dataclass(frozen=True, slots=True)
class Stopped:
    """The client stopped for good (internal: raised from ``events()``, never yielded)."""

    error: MessengerError


Event = Entry | Presence | Typing | Sent | SendFailed | Connected | Disconnected
