"""Test support for the push queue and worker: a hand-driven clock, an in-memory token store
and builders for devices, drafts and jobs. Our own port implementations, not mocks."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Protocol

from inbox.core.models import Device, EntryDraft, EntryKind, PushTarget
from push.job import PushJob
from push.message import PushMessage, PushResult, PushStatus

START_MS = 1_700_000_000_000
VISIBILITY_MS = 300
"""Visibility timeout of the queues under test: short, as Redis measures it in real time."""


class RedisUrl(Protocol):
    """What the tests need of the ``redis_server`` fixture."""

    @property
    def url(self) -> str: ...


class ManualClock:
    """A clock that moves only when told to (``sleep`` moves it too, without waiting)."""

    def __init__(self, start_ms: int = START_MS) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        """The current hand-set time."""
        return self.ms

    def monotonic(self) -> float:
        """The hand-set time, in seconds."""
        return self.ms / 1000

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once (and let other tasks run)."""
        self.advance(seconds)
        await asyncio.sleep(0)

    def block(self, seconds: float) -> None:
        """Advance by ``seconds`` at once."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` ahead."""
        self.ms += round(seconds * 1000)


class MemoryAccounts:
    """The token half of an AccountStore: ``clear_push`` with compare-and-clear."""

    def __init__(self, tokens: dict[int, str] | None = None) -> None:
        self.tokens: dict[int, str | None] = dict(tokens or {})
        self.calls: list[tuple[int, str | None]] = []
        self.fail_for: set[int] = set()

    async def clear_push(self, device_id: int, token: str | None = None) -> bool:
        """Remove the device's token if it is (still) ``token``; True if removed."""
        self.calls.append((device_id, token))
        if device_id in self.fail_for:
            raise ConnectionError(f"account store unreachable for device {device_id}")
        current = self.tokens.get(device_id)
        if current is None or (token is not None and current != token):
            return False
        self.tokens[device_id] = None
        return True


class RaisingSender:
    """A sender that breaks its contract by raising, then (optionally) succeeds."""

    def __init__(self, provider: str, failures: int) -> None:
        self.provider = provider
        self.failures = failures
        self.sent: list[PushMessage] = []

    async def send(self, msg: PushMessage) -> PushResult:
        """Raise the first ``failures`` times, then report sent."""
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("boom")
        self.sent.append(msg)
        return PushResult(PushStatus.SENT)

    async def aclose(self) -> None:
        """Nothing to release."""


FCM_TOKEN = "fcm-token-" + "x" * 20  # noqa: S105 (a device push token)
APNS_TOKEN = "a" * 64  # noqa: S105


def device(
    device_id: int,
    user_id: int = 42,
    *,
    provider: str | None = "fcm",
    token: str = FCM_TOKEN,
    active: bool = True,
) -> Device:
    """A device of ``user_id``, with a push token unless ``provider`` is None."""
    return Device(
        device_id=device_id,
        user_id=user_id,
        device_name=f"phone-{device_id}",
        platform="android" if provider == "fcm" else "ios",
        active=active,
        cur_max_msg_id=0,
        created_at_ms=START_MS - 10_000,
        push=PushTarget(provider, token) if provider else None,
    )


def message_draft(
    sender_id: int = 17, sender_device_id: int = 170, body: str = "see you at 8?"
) -> EntryDraft:
    """A direct message from ``sender_id`` to user 42."""
    return EntryDraft(
        kind=EntryKind.MESSAGE,
        msg_id=7261,
        conversation_id="d:17:42",
        sender_id=sender_id,
        sender_device_id=sender_device_id,
        created_at_ms=START_MS,
        body=body,
    )


def make_job(
    job_id: str = "1001:99",
    *,
    provider: str = "fcm",
    token: str | None = None,
    device_id: int = 1001,
    first_enqueued_ms: int = START_MS,
) -> PushJob:
    """A ready-to-send job for device ``device_id`` of user 42."""
    message = PushMessage(
        provider="fcm",
        token=token or (APNS_TOKEN if provider == "apns" else FCM_TOKEN),
        topic=None,
        title="Alice",
        body="see you at 8?",
        data={"conversation_id": "d:17:42", "msg_id": "7261", "id": "99"},
        badge=2,
        collapse_key="d:17:42",
    )
    message = replace(message, provider=provider)  # type: ignore[arg-type]
    return PushJob(
        job_id=job_id,
        device_id=device_id,
        user_id=42,
        message=message,
        attempt=1,
        first_enqueued_ms=first_enqueued_ms,
    )
