"""FcmSender: the real pyfcm and google-auth against the local fake FCM."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from push.message import PushMessage, PushStatus
from push.payload import fcm_message
from push.sender import PushSender
from push.sender_fcm import FcmSender
from tests.push import fake_fcm as fake_fcm_module
from tests.push.fake_fcm import FakeFcm, FcmReply, write_service_account


@pytest.fixture
async def sender(fake_fcm: FakeFcm, fcm_credentials: Path) -> AsyncIterator[FcmSender]:
    sender = FcmSender(fcm_credentials, endpoint=fake_fcm.base_url, timeout_s=5.0)
    try:
        yield sender
    finally:
        await sender.aclose()


async def test_sent_with_pyfcm_request_and_oauth_token(
    sender: FcmSender, fake_fcm: FakeFcm, push_message: PushMessage
) -> None:
    result = await sender.send(push_message)

    assert result.status is PushStatus.SENT
    assert result.detail == "projects/demo-project/messages/1"
    [token_request] = fake_fcm.token_requests
    assert token_request["form"]["grant_type"] == fake_fcm_module.JWT_BEARER
    assert token_request["claims"]["scope"] == fake_fcm_module.FCM_SCOPE
    [request] = fake_fcm.requests
    assert request.path == "/v1/projects/demo-project/messages:send"
    assert request.headers["Authorization"] == "Bearer fake-access-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"message": fcm_message(push_message), "validate_only": False}
    message = request.body["message"]
    assert message["android"]["notification"] == {"notification_count": 2, "tag": "d:17:42"}
    assert message["apns"]["payload"]["aps"]["badge"] == 2
    assert message["data"] == {"conversation_id": "d:17:42", "msg_id": "7261", "id": "99"}


async def test_access_token_is_fetched_once_for_concurrent_sends(
    sender: FcmSender, fake_fcm: FakeFcm, push_message: PushMessage
) -> None:
    results = await asyncio.gather(*(sender.send(push_message) for _ in range(20)))

    assert {r.status for r in results} == {PushStatus.SENT}
    assert len(fake_fcm.requests) == 20
    assert len(fake_fcm.token_requests) == 1


async def test_expired_access_token_is_renewed_and_the_send_repeated_once(
    sender: FcmSender, fake_fcm: FakeFcm, push_message: PushMessage
) -> None:
    expired = FcmReply(
        401,
        {
            "error": {
                "code": 401,
                "status": "UNAUTHENTICATED",
                "message": "Request had invalid authentication credentials.",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "ACCESS_TOKEN_EXPIRED",
                    }
                ],
            }
        },
    )
    fake_fcm.reply(expired)

    result = await sender.send(push_message)

    assert result.status is PushStatus.SENT
    assert [r.headers["Authorization"] for r in fake_fcm.requests] == [
        "Bearer fake-access-1",
        "Bearer fake-access-2",
    ]


async def test_503_is_retry_without_pyfcm_retrying(
    sender: FcmSender, fake_fcm: FakeFcm, push_message: PushMessage
) -> None:
    fake_fcm.reply(fake_fcm_module.UNAVAILABLE)

    result = await sender.send(push_message)

    assert result.status is PushStatus.RETRY
    assert result.retry_after_s is None
    assert "503" in result.detail
    assert len(fake_fcm.requests) == 1


async def test_429_retry_after_is_returned_not_slept(
    sender: FcmSender, fake_fcm: FakeFcm, push_message: PushMessage
) -> None:
    fake_fcm.reply(fake_fcm_module.QUOTA_EXCEEDED)

    started = time.monotonic()
    result = await sender.send(push_message)

    assert time.monotonic() - started < 2.0
    assert result.status is PushStatus.RETRY
    assert result.retry_after_s == 7.0
    assert len(fake_fcm.requests) == 1


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (fake_fcm_module.UNREGISTERED, PushStatus.INVALID_TOKEN),
        (fake_fcm_module.INVALID_TOKEN, PushStatus.INVALID_TOKEN),
        (fake_fcm_module.INVALID_PAYLOAD, PushStatus.FAILED),
        (FcmReply(404, {"error": "no such route"}), PushStatus.FAILED),
        (
            FcmReply(
                403,
                fake_fcm_module.google_error(
                    403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"
                ),
            ),
            PushStatus.FAILED,
        ),
        (FcmReply(500, {}), PushStatus.RETRY),
    ],
)
async def test_error_classification(
    sender: FcmSender,
    fake_fcm: FakeFcm,
    push_message: PushMessage,
    reply: FcmReply,
    status: PushStatus,
) -> None:
    fake_fcm.reply(reply)

    result = await sender.send(push_message)

    assert result.status is status
    assert len(fake_fcm.requests) == 1


async def test_preview_off_sends_title_only(
    sender: FcmSender, fake_fcm: FakeFcm, push_message: PushMessage
) -> None:
    await sender.send(replace(push_message, body=None))

    assert fake_fcm.requests[0].body["message"]["notification"] == {"title": "Alice"}


async def test_connection_refused_is_retry(
    fcm_credentials: Path, push_message: PushMessage, unused_port: int
) -> None:
    sender: PushSender = FcmSender(fcm_credentials, endpoint=f"http://127.0.0.1:{unused_port}")
    try:
        result = await sender.send(push_message)
    finally:
        await sender.aclose()

    assert result.status is PushStatus.RETRY
    assert "unreachable" in result.detail


async def test_token_endpoint_unreachable_is_retry(
    fake_fcm: FakeFcm, tmp_path: Path, push_message: PushMessage, unused_port: int
) -> None:
    credentials = tmp_path / "sa.json"
    write_service_account(credentials, f"http://127.0.0.1:{unused_port}/token", "demo-project")
    sender = FcmSender(credentials, endpoint=fake_fcm.base_url)
    try:
        result = await sender.send(push_message)
    finally:
        await sender.aclose()

    assert result.status is PushStatus.RETRY
    assert fake_fcm.requests == []


async def test_rejected_service_account_is_failed(
    fake_fcm: FakeFcm, tmp_path: Path, push_message: PushMessage
) -> None:
    credentials = tmp_path / "untrusted.json"
    write_service_account(credentials, fake_fcm.token_uri, "demo-project")  # key not trusted
    sender = FcmSender(credentials, endpoint=fake_fcm.base_url)
    try:
        result = await sender.send(push_message)
    finally:
        await sender.aclose()

    assert result.status is PushStatus.FAILED
    assert "invalid_grant" in result.detail
    assert fake_fcm.requests == []


async def test_slow_provider_is_bounded_by_the_timeout(
    fake_fcm: FakeFcm, fcm_credentials: Path, push_message: PushMessage
) -> None:
    fake_fcm.reply(FcmReply(200, {"name": "late"}, delay_s=1.5))
    sender = FcmSender(fcm_credentials, endpoint=fake_fcm.base_url, timeout_s=0.3)
    try:
        started = time.monotonic()
        result = await sender.send(push_message)
        elapsed = time.monotonic() - started
    finally:
        await sender.aclose()

    assert result.status is PushStatus.RETRY
    assert "timed out" in result.detail
    assert elapsed < 1.0


def test_configuration_errors_are_raised_at_construction(
    tmp_path: Path, fcm_credentials: Path
) -> None:
    with pytest.raises(ValueError, match="missing.json"):
        FcmSender(tmp_path / "missing.json")
    (tmp_path / "garbage.json").write_text("{}")
    with pytest.raises(ValueError, match="garbage.json"):
        FcmSender(tmp_path / "garbage.json")
    with pytest.raises(ValueError, match="scheme://host"):
        FcmSender(fcm_credentials, endpoint="127.0.0.1:8080/v1")
