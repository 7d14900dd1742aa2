"""pytest fixtures for real Redis and Cassandra servers.

Load with ``pytest_plugins = ["tests.servers.fixtures"]`` in the top-level ``conftest.py``
(a test module may list it too, but must then not import this module itself: pytest could not
assertion-rewrite it and warns). Servers start only when a test asks for them and stop at the
end of their scope. ``unique_keyspace`` and ``cql_session`` are re-exported from
``cassandra_server``.

Environment:
    ``MESSENGER_TEST_REDIS_URL``: use this Redis instead of starting one (``redis_server``).
    ``MESSENGER_TEST_CASSANDRA_HOSTS``: ``host:port`` of a Cassandra to use instead of starting
    one (``cassandra_server``). Fixtures that must own their server ignore both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import pytest

from tests.servers.cassandra_server import CassandraServer, cql_session, unique_keyspace
from tests.servers.redis_server import RedisServer
from tests.servers.s3_server import S3Server

__all__ = [
    "CassandraEndpoint",
    "ExternalCassandra",
    "ExternalRedis",
    "RedisEndpoint",
    "cassandra_server",
    "cql_session",
    "fresh_redis_server",
    "own_cassandra_server",
    "redis_server",
    "s3_server",
    "unique_keyspace",
]

REDIS_URL_ENV = "MESSENGER_TEST_REDIS_URL"
CASSANDRA_HOSTS_ENV = "MESSENGER_TEST_CASSANDRA_HOSTS"


class RedisEndpoint(Protocol):
    """Where a test Redis listens, and whether the harness started it (may kill it)."""

    @property
    def owned(self) -> bool: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def url(self) -> str: ...


class CassandraEndpoint(Protocol):
    """Where a test Cassandra listens, and whether the harness started it (may stop it)."""

    @property
    def owned(self) -> bool: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def contact_point(self) -> str: ...


@dataclass(frozen=True)
class ExternalRedis:
    """A Redis someone else runs, from ``MESSENGER_TEST_REDIS_URL``."""

    url: str
    owned: bool = False

    @property
    def host(self) -> str:
        """Host part of the URL (default 127.0.0.1)."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """Port part of the URL (default 6379)."""
        return urlsplit(self.url).port or 6379


@dataclass(frozen=True)
class ExternalCassandra:
    """A Cassandra someone else runs, from ``MESSENGER_TEST_CASSANDRA_HOSTS``."""

    host: str
    port: int
    owned: bool = False

    @classmethod
    def parse(cls, value: str) -> ExternalCassandra:
        """Parse ``host:port`` (port defaults to 9042)."""
        host, sep, port = value.strip().rpartition(":")
        if not sep:
            return cls(host=port, port=9042)
        if not host or not port.isdigit():
            raise ValueError(f"{CASSANDRA_HOSTS_ENV} must be host:port, got {value!r}")
        return cls(host=host, port=int(port))

    @property
    def contact_point(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisEndpoint]:
    """A Redis for the whole session: ``MESSENGER_TEST_REDIS_URL`` or one started here.

    Shared: tests must not kill it or rely on it being empty (use ``fresh_redis_server``).
    """
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        yield ExternalRedis(url=url)
        return
    with RedisServer() as server:
        yield server


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A Redis process of this test's own, empty, which the test may kill or restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def cassandra_server() -> Iterator[CassandraEndpoint]:
    """A Cassandra for the whole session: ``MESSENGER_TEST_CASSANDRA_HOSTS`` or one started here.

    Shared: use a fresh keyspace per module (``unique_keyspace``); never stop it.
    """
    hosts = os.environ.get(CASSANDRA_HOSTS_ENV)
    if hosts:
        yield ExternalCassandra.parse(hosts)
        return
    with CassandraServer() as server:
        yield server


@pytest.fixture(scope="module")
def own_cassandra_server() -> Iterator[CassandraServer]:
    """A Cassandra node of this module's own, which its tests may stop, kill and restart.

    Slow (a second JVM, 10-20 s to start): only for tests about Cassandra going away.
    """
    with CassandraServer() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3-compatible server (moto) for the whole session; use a bucket of your own."""
    with S3Server() as server:
        yield server
