"""Fixtures shared by the store contract suites."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from idgen.snowflake import SnowflakeGenerator
from inbox.storage.cassandra_schema import create_schema
from inbox.storage.sqlite_db import SqliteDatabase
from tests.push.support import ManualClock
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


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    """An open embedded database in the test's directory, closed afterwards."""
    db = SqliteDatabase(tmp_path / "m.db")
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test moves it."""
    return ManualClock(1_760_000_000_000)


@pytest.fixture
def ids(clock: ManualClock) -> SnowflakeGenerator:
    """Snowflake ids on the test's clock."""
    return SnowflakeGenerator(1, clock)
