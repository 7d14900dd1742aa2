"""What the push delivery edge takes and returns: one message, one classified result."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

Provider = Literal["fcm", "apns"]


@dataclass(frozen=True)
class PushMessage:
    """One notification for one device token.

    ``body`` is ``None`` when message previews are off. ``data`` values are strings (both
    providers require it). ``badge`` is the user's total unread count. ``collapse_key`` is the
    conversation id, so a newer push for the same conversation replaces the older one on the
    device. ``topic`` is the APNs topic (bundle id) registered with the token, if any.
    """

    provider: Provider
    token: str
    topic: str | None
    title: str
    body: str | None
    data: dict[str, str]
    badge: int
    collapse_key: str


class PushStatus(enum.Enum):
    """How a provider answered one send."""

    SENT = "sent"
    """Accepted by the provider."""
    RETRY = "retry"
    """Transient: 429, 5xx, connection failure or timeout. Try again later."""
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (not a secret)
    """The token is unregistered or malformed: remove it from the device."""
    FAILED = "failed"
    """Permanent for this message: any other 4xx, authentication or configuration errors."""


@dataclass(frozen=True)
class PushResult:
    """The classified outcome of one send.

    ``retry_after_s`` carries the provider's ``Retry-After`` (seconds) when it gave one;
    ``detail`` is a short human-readable reason for logs and the dead-letter queue.
    """

    status: PushStatus
    retry_after_s: float | None = None
    detail: str = ""
