"""The push delivery port: one adapter per provider (``sender_fcm``, ``sender_apns``,
``sender_log``)."""

from __future__ import annotations

from typing import Protocol

from push.message import PushMessage, PushResult


class PushSender(Protocol):
    """Delivers one notification to one device token through one provider.

    Contract:

    - ``provider`` names the provider this sender serves (``"fcm"``, ``"apns"``); the worker
      routes each :class:`PushMessage` to the sender whose ``provider`` matches.
    - ``send`` makes **one** delivery attempt and classifies the answer into a
      :class:`PushResult`. It never raises for provider or network errors (HTTP errors,
      refused or dropped connections, timeouts, malformed answers): those become ``RETRY``,
      ``INVALID_TOKEN`` or ``FAILED``. It does not retry or sleep on its own (retries belong to
      the caller's :mod:`push.retry` policy), and it returns within a bounded time. It may be
      called concurrently from many tasks of one event loop.
    - ``aclose`` releases connections, sessions and threads; ``send`` is not called after it.
      Closing twice is harmless.

    Configuration errors (a missing or unreadable key file) are raised by the constructor, so
    that a misconfigured deployment fails at start-up instead of on the first push.
    """

    @property
    def provider(self) -> str:
        """The provider this sender delivers through."""
        ...

    async def send(self, msg: PushMessage) -> PushResult:
        """Attempt delivery of ``msg`` once and classify the outcome (never raises for
        provider or network errors)."""
        ...

    async def aclose(self) -> None:
        """Release everything the sender holds."""
        ...
