"""Fixtures shared by the store contract suites."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from inbox.cassandra_schema import create_schema
from tests.servers.cassandra_server import cql_session, unique_keyspace


@pytest.fixture(scope="module")
def keyspace(request: pytest.FixtureRequest, cassandra_server: Any) -> Iterator[str]:
    """A fresh keyspace with the whole schema for this test module, dropped afterwards.

    The schema is created twice, which also proves ``create_schema`` idempotent.
    """
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    name = unique_keyspace(module[:30])
    with cql_session(cassandra_server.host, cassandra_server.port) as session:
        create_schema(session, name)
        create_schema(session, name)
        yield name
        session.execute(f"DROP KEYSPACE IF EXISTS {name}")
