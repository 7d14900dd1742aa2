"""Fixtures for the push delivery edge: local FCM and APNs servers on free loopback ports."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from redis.asyncio import Redis

from push.message import PushMessage
from push.queue import PushQueue
from push.queue_redis import RedisQueue
from push.queue_sqlite import SqliteQueue
from tests.push.fake_apns import APNS_KEY_ID, APNS_TEAM_ID, FakeApns, write_p8_key
from tests.push.fake_fcm import FakeFcm
from tests.push.support import VISIBILITY_MS, ManualClock, RedisUrl


@pytest.fixture
async def fake_fcm() -> AsyncIterator[FakeFcm]:
    """A running fake FCM (token endpoint and messages:send)."""
    fake = FakeFcm()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def push_message() -> PushMessage:
    """A typical push: a direct message with a preview, two unread, collapsed per chat."""
    return PushMessage(
        provider="fcm",
        token="device-token-0123456789",  # noqa: S106 (a device push token)
        topic=None,
        title="Alice",
        body="see you at 8?",
        data={"conversation_id": "d:17:42", "msg_id": "7261", "id": "99"},
        badge=2,
        collapse_key="d:17:42",
    )


@pytest.fixture
def fcm_credentials(fake_fcm: FakeFcm, tmp_path: Path) -> Path:
    """A service-account JSON whose token_uri is the fake's and whose key it trusts."""
    return fake_fcm.write_service_account(tmp_path / "service-account.json")


@pytest.fixture
def apns_key_file(tmp_path: Path) -> Path:
    """Path of a fresh .p8 signing key."""
    path = tmp_path / "AuthKey.p8"
    write_p8_key(path)
    return path


@pytest.fixture
def apns_public_key(apns_key_file: Path) -> ec.EllipticCurvePublicKey:
    """The public half of ``apns_key_file``, which the fake checks provider tokens with."""
    key = load_pem_private_key(apns_key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.public_key()


@pytest.fixture
def apns_tls_dir(tmp_path: Path) -> Path:
    """Where the fake APNs keeps its CA and server certificate."""
    path = tmp_path / "tls"
    path.mkdir()
    return path


@pytest.fixture
async def fake_apns(
    apns_public_key: ec.EllipticCurvePublicKey, apns_tls_dir: Path
) -> AsyncIterator[FakeApns]:
    """A running fake APNs that checks provider tokens signed with ``apns_key_file``."""
    fake = FakeApns(apns_tls_dir, apns_public_key, team_id=APNS_TEAM_ID, key_id=APNS_KEY_ID)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def unused_port() -> int:
    """A loopback port with nothing listening on it (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock the test moves by hand."""
    return ManualClock()


@pytest.fixture
async def redis_client(redis_server: RedisUrl) -> AsyncIterator[Redis]:
    """A client of the session's shared Redis."""
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def redis_stream() -> str:
    """A stream name of this test's own (its keys share one hash tag)."""
    return f"push:{{test-{uuid.uuid4().hex}}}"


@pytest.fixture(params=["sqlite", "redis"])
async def push_queue(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    manual_clock: ManualClock,
    redis_stream: str,
) -> AsyncIterator[PushQueue]:
    """Each queue backend, on the manual clock, with a short visibility timeout."""
    queue: PushQueue
    if request.param == "sqlite":
        queue = SqliteQueue(
            tmp_path / "push.sqlite3",
            manual_clock,
            visibility_timeout_ms=VISIBILITY_MS,
            poll_interval_s=0.02,
        )
    else:
        server: RedisUrl = request.getfixturevalue("redis_server")
        client = Redis.from_url(server.url)
        queue = RedisQueue(
            client, manual_clock, stream=redis_stream, visibility_timeout_ms=VISIBILITY_MS
        )
    try:
        yield queue
    finally:
        await queue.close()
        if isinstance(queue, RedisQueue):
            await client.aclose()
