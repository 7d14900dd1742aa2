"""The stores of each backend, opened as ``messenger serve`` opens them, for contract suites."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from api.settings import Settings
from api.stores import Stores, open_stores
from idgen.clock import SYSTEM_CLOCK
from tests.api.backends import JWT_SECRET


@asynccontextmanager
async def backend_stores(request: pytest.FixtureRequest, tmp_path: Path,
                         production_extra: Callable[[], dict[str, Any]] = dict,
                         ) -> AsyncIterator[Stores]:
    """The stores of the backend ``request.param`` names, as ``messenger serve`` opens them:
    embedded in ``tmp_path``, or production on the test Redis and Cassandra (in the module's
    keyspace) with ``production_extra()`` settings on top."""
    if request.param == "embedded":
        settings = Settings(data_dir=tmp_path)
    else:
        redis: Any = request.getfixturevalue("redis_server")
        cassandra: Any = request.getfixturevalue("cassandra_server")
        settings = Settings(
            data_dir=tmp_path, redis_url=redis.url, cassandra_hosts=cassandra.contact_point,
            cassandra_keyspace=request.getfixturevalue("keyspace"), jwt_secret=JWT_SECRET,
            **production_extra())
    async with AsyncExitStack() as stack:
        yield await open_stores(settings, stack, SYSTEM_CLOCK)
