"""API contract tests run against every backend: a real ``messenger serve`` per backend.

``backend_env`` is parametrised over ``BACKENDS``; every test that uses ``server`` (or builds
its own server from ``backend_env``) runs once on the embedded default and once on Redis +
Cassandra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.backends import BACKENDS, production_env
from tests.api.server import MessengerProcess
from tests.push.fake_fcm import FakeFcm


@pytest.fixture(scope="package", params=BACKENDS)
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment variables selecting the backend (empty for the embedded default)."""
    if request.param == "embedded":
        return {}
    redis = request.getfixturevalue("redis_server")
    cassandra = request.getfixturevalue("cassandra_server")
    return production_env(redis, cassandra)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, backend_env: dict[str, str]
           ) -> Iterator[MessengerProcess]:
    """One server per backend, shared by the package's tests (1 s heartbeats)."""
    root: Path = tmp_path_factory.mktemp("messenger")
    proc = MessengerProcess(root / "data",
                            {"MESSENGER_HEARTBEAT_INTERVAL_MS": "1000", **backend_env})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: MessengerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
async def fcm() -> AsyncIterator[FakeFcm]:
    """A local fake of Google's FCM endpoints (servers point ``MESSENGER_FCM_*`` at it)."""
    fake = FakeFcm()
    await fake.start()
    yield fake
    await fake.stop()
