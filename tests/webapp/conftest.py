"""Browser tests of the web app against a real ``messenger serve``.

One server per package (embedded backend, 1 s heartbeats so the app's pings and the
presence settle window are exercised quickly); browsers are fresh per test, and every test
fails if any browser logged a console error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.backends import production_env
from tests.api.server import MessengerProcess
from tests.servers.fixtures import CassandraEndpoint, RedisEndpoint
from tests.webapp.browser import Browser

HEARTBEAT_ENV = {"MESSENGER_HEARTBEAT_INTERVAL_MS": "1000"}


def start_server(root: Path, env: dict[str, str]) -> MessengerProcess:
    proc = MessengerProcess(root / "data", {**HEARTBEAT_ENV, **env})
    proc.start()
    return proc


@pytest.fixture(scope="package")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessengerProcess]:
    """The embedded backend."""
    proc = start_server(tmp_path_factory.mktemp("webapp"), {})
    yield proc
    proc.stop()


@pytest.fixture(scope="package")
def production_web_server(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisEndpoint,
                          cassandra_server: CassandraEndpoint) -> Iterator[MessengerProcess]:
    """Redis + Cassandra."""
    proc = start_server(tmp_path_factory.mktemp("webapp-prod"),
                        production_env(redis_server, cassandra_server, prefix="webapp"))
    yield proc
    proc.stop()


class Browsers:
    """Launches browsers for one test and closes them after it."""

    def __init__(self) -> None:
        self.opened: list[Browser] = []

    def new(self) -> Browser:
        browser = Browser.launch()
        self.opened.append(browser)
        return browser


@pytest.fixture
def browsers() -> Iterator[Browsers]:
    pool = Browsers()
    try:
        yield pool
        errors = {i: b.console_errors(b.allow_network_errors) for i, b in enumerate(pool.opened)}
        assert not any(errors.values()), f"console errors: {errors}"
    finally:
        for browser in pool.opened:
            browser.quit()


def username(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"
