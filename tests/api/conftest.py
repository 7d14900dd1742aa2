"""A shared embedded-default server for the API contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.server import MessengerProcess


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessengerProcess]:
    root: Path = tmp_path_factory.mktemp("messenger")
    proc = MessengerProcess(root / "data", {"MESSENGER_HEARTBEAT_INTERVAL_MS": "1000"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: MessengerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
