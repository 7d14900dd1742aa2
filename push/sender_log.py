"""A push sender that only logs: the embedded default when no provider is configured."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from push.message import PushMessage, PushResult, PushStatus

if TYPE_CHECKING:
    from push.sender import PushSender

logger = logging.getLogger(__name__)


class LogSender:
    """Logs each push it would send (one line) and reports it as sent.

    The token is shown only by its last characters: push tokens are credentials for reaching a
    user's device and do not belong in logs.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider

    async def send(self, msg: PushMessage) -> PushResult:
        """Log ``msg`` and return ``SENT``."""
        logger.info(
            "push (not sent, no %s provider configured): token=...%s title=%r "
            "collapse_key=%r badge=%d",
            self.provider,
            msg.token[-6:],
            msg.title,
            msg.collapse_key,
            msg.badge,
        )
        return PushResult(PushStatus.SENT, detail="logged")

    async def aclose(self) -> None:
        """Nothing to release."""


if TYPE_CHECKING:
    _conforms: PushSender = LogSender("fcm")
