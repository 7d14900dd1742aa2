"""The client's tests against real servers: ``server`` is the API tests' fixture (one real
``messenger serve`` per backend, 1 s heartbeats); ``embedded`` is one embedded server per
test module; ``own_server`` one per test, to kill or restart."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import backend_env, server
from tests.api.server import MessengerProcess
from tests.messenger_client.support import HEARTBEAT_ENV

__all__ = ["backend_env", "embedded", "own_server", "server"]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessengerProcess]:
    """An embedded server shared by the module's tests that leave it running."""
    proc = MessengerProcess(tmp_path_factory.mktemp("embedded") / "data", HEARTBEAT_ENV)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[MessengerProcess]:
    """An embedded server of the test's own (on ``tmp_path``), to kill or restart."""
    proc = MessengerProcess(tmp_path / "data", HEARTBEAT_ENV)
    proc.start()
    yield proc
    proc.stop()
