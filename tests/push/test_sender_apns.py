"""ApnsSender: the real aioapns over HTTP/2 + TLS against the local fake APNs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from push.message import PushMessage, PushStatus
from push.payload import apns_collapse_id, apns_payload
from push.sender import PushSender
from push.sender_apns import ApnsSender
from tests.push import fake_apns as fake_apns_module
from tests.push.fake_apns import APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, ApnsReply, FakeApns


@pytest.fixture
def message(push_message: PushMessage) -> PushMessage:
    return replace(push_message, provider="apns", token="a" * 64)


def _sender(fake: FakeApns, key_file: Path, **options: float) -> ApnsSender:
    return ApnsSender(
        key_file,
        APNS_KEY_ID,
        APNS_TEAM_ID,
        APNS_TOPIC,
        endpoint=fake.endpoint,
        ca_file=fake.ca_file,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def sender(fake_apns: FakeApns, apns_key_file: Path) -> AsyncIterator[ApnsSender]:
    sender = _sender(fake_apns, apns_key_file, timeout_s=5.0)
    try:
        yield sender
    finally:
        await sender.aclose()


async def test_sent_with_headers_token_and_payload(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    result = await sender.send(message)

    assert result.status is PushStatus.SENT
    [request] = fake_apns.requests
    assert request.path == "/3/device/" + "a" * 64
    assert request.headers[":scheme"] == "https"
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["apns-topic"] == APNS_TOPIC
    assert request.headers["apns-collapse-id"] == "d:17:42"
    assert request.headers["apns-id"] == result.detail
    assert request.headers["authorization"].startswith("bearer ")
    assert request.claims["iss"] == APNS_TEAM_ID  # ES256 signature checked by the fake
    assert request.body == apns_payload(message)
    assert request.body["aps"]["badge"] == 2


async def test_connection_is_reused(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    for _ in range(3):
        assert (await sender.send(message)).status is PushStatus.SENT
    assert fake_apns.connections == 1


async def test_topic_of_the_token_wins(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    await sender.send(replace(message, topic="im.inbox.other"))
    assert fake_apns.requests[0].headers["apns-topic"] == "im.inbox.other"


async def test_long_collapse_key_is_hashed(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    long_key = "g:" + "1" * 80
    await sender.send(replace(message, collapse_key=long_key))
    assert fake_apns.requests[0].headers["apns-collapse-id"] == apns_collapse_id(long_key)


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (fake_apns_module.BAD_DEVICE_TOKEN, PushStatus.INVALID_TOKEN),
        (fake_apns_module.UNREGISTERED, PushStatus.INVALID_TOKEN),
        (fake_apns_module.SERVICE_UNAVAILABLE, PushStatus.RETRY),
        (ApnsReply(500, "InternalServerError"), PushStatus.RETRY),
        (ApnsReply(400, "DeviceTokenNotForTopic"), PushStatus.FAILED),
        (ApnsReply(413, "PayloadTooLarge"), PushStatus.FAILED),
    ],
)
async def test_error_classification(
    sender: ApnsSender,
    fake_apns: FakeApns,
    message: PushMessage,
    reply: ApnsReply,
    status: PushStatus,
) -> None:
    fake_apns.reply(reply)

    result = await sender.send(message)

    assert result.status is status
    assert str(reply.status) in result.detail and (reply.reason or "") in result.detail
    assert len(fake_apns.requests) == 1


@pytest.mark.parametrize("token", ["", "not-hex/../../x", "ab" * 5])
async def test_malformed_token_is_invalid_without_a_request(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage, token: str
) -> None:
    result = await sender.send(replace(message, token=token))

    assert result.status is PushStatus.INVALID_TOKEN
    assert fake_apns.requests == []


async def test_429_retry_after_is_returned_without_retrying(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    fake_apns.reply(fake_apns_module.TOO_MANY_REQUESTS)

    started = time.monotonic()
    result = await sender.send(message)

    assert time.monotonic() - started < 2.0
    assert result.status is PushStatus.RETRY
    assert result.retry_after_s == 7.0
    assert len(fake_apns.requests) == 1


async def test_bad_provider_token_is_failed(
    fake_apns: FakeApns, tmp_path: Path, message: PushMessage
) -> None:
    other_key = tmp_path / "other.p8"
    fake_apns_module.write_p8_key(other_key)
    sender = _sender(fake_apns, other_key)
    try:
        result = await sender.send(message)
    finally:
        await sender.aclose()

    assert result.status is PushStatus.FAILED
    assert "InvalidProviderToken" in result.detail


async def test_error_without_body_does_not_hang(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    fake_apns.reply(ApnsReply(503, chunks=0))

    result = await sender.send(message)

    assert result.status is PushStatus.RETRY
    assert result.detail == "APNs 503"  # answered, not timed out


async def test_error_body_in_several_frames_is_read_whole(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    fake_apns.reply(ApnsReply(410, "Unregistered", timestamp=1_700_000_000_000, chunks=3))
    assert (await sender.send(message)).status is PushStatus.INVALID_TOKEN


async def test_connection_survives_more_error_bytes_than_the_flow_control_window(
    sender: ApnsSender, fake_apns: FakeApns, message: PushMessage
) -> None:
    # 8 x 15 KB of error bodies > the 64 KiB initial window: the client must hand it back.
    fake_apns.reply(*[ApnsReply(400, "x" * 15_000)] * 8)

    results = [await sender.send(message) for _ in range(9)]

    assert [r.status for r in results] == [PushStatus.FAILED] * 8 + [PushStatus.SENT]
    assert fake_apns.connections == 1


async def test_timeout_then_late_answer_keeps_the_connection_usable(
    fake_apns: FakeApns, apns_key_file: Path, message: PushMessage
) -> None:
    sender = _sender(fake_apns, apns_key_file, timeout_s=0.3)
    fake_apns.reply(ApnsReply(200, delay_s=0.6), ApnsReply(410, "Unregistered", delay_s=0.6))
    try:
        first = await sender.send(message)
        second = await sender.send(message)
        await asyncio.sleep(0.7)  # both late answers arrive for callers that left
        third = await sender.send(message)
    finally:
        await sender.aclose()

    assert [first.status, second.status] == [PushStatus.RETRY] * 2
    assert "timed out" in first.detail
    assert third.status is PushStatus.SENT
    assert fake_apns.connections == 1


async def test_lost_connection_fails_over_pending_sends_after_a_timeout(
    fake_apns: FakeApns, apns_key_file: Path, message: PushMessage
) -> None:
    sender = _sender(fake_apns, apns_key_file, timeout_s=0.3)
    patient = _sender(fake_apns, apns_key_file, timeout_s=5.0)
    patient._client = sender._get_client()  # one connection pool for both callers
    fake_apns.reply(ApnsReply(200, delay_s=10), ApnsReply(200, delay_s=10))
    try:
        abandoned = await sender.send(message)
        pending = asyncio.create_task(patient.send(message))
        await fake_apns.wait_for_requests(2)
        started = time.monotonic()
        fake_apns.drop_connections()
        result = await pending
    finally:
        await sender.aclose()

    assert abandoned.status is PushStatus.RETRY
    # The pending send was re-sent on a new connection at once, not left to time out.
    assert result.status is PushStatus.SENT
    assert time.monotonic() - started < 2.0
    assert fake_apns.connections == 2


async def test_connection_refused_is_retry(
    apns_key_file: Path, message: PushMessage, unused_port: int
) -> None:
    sender: PushSender = ApnsSender(
        apns_key_file, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, endpoint=f"127.0.0.1:{unused_port}"
    )
    started = time.monotonic()
    try:
        result = await sender.send(message)
    finally:
        await sender.aclose()

    assert result.status is PushStatus.RETRY
    assert time.monotonic() - started < 5.0


async def test_untrusted_server_certificate_is_retry(
    fake_apns: FakeApns, apns_key_file: Path, message: PushMessage
) -> None:
    sender = ApnsSender(
        apns_key_file,
        APNS_KEY_ID,
        APNS_TEAM_ID,
        APNS_TOPIC,
        endpoint=fake_apns.endpoint,
        connection_attempts=1,
    )
    try:
        result = await sender.send(message)
    finally:
        await sender.aclose()

    assert result.status is PushStatus.RETRY
    assert fake_apns.requests == []


def test_configuration_errors_are_raised_at_construction(tmp_path: Path) -> None:
    (tmp_path / "bad.p8").write_text("not a key")
    with pytest.raises(ValueError, match="bad.p8"):
        ApnsSender(tmp_path / "bad.p8", APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC)
    with pytest.raises(ValueError, match="missing.p8"):
        ApnsSender(tmp_path / "missing.p8", APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC)
    key = tmp_path / "ok.p8"
    fake_apns_module.write_p8_key(key)
    with pytest.raises(ValueError, match="host:port"):
        ApnsSender(key, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, endpoint="127.0.0.1")
