"""The environment that makes ``messenger serve`` use each backend under test."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.servers.cassandra_server import unique_keyspace

if TYPE_CHECKING:
    from tests.servers.fixtures import CassandraEndpoint, RedisEndpoint

BACKENDS = ("embedded", "production")
JWT_SECRET = "test-secret-of-at-least-32-characters!"
API_REDIS_DB = 2
"""The API servers' Redis database, apart from the store tests' keys in database 0."""


def production_env(redis: RedisEndpoint, cassandra: CassandraEndpoint, prefix: str = "api"
                   ) -> dict[str, str]:
    """Redis + Cassandra, in a fresh keyspace (the server creates it on start-up)."""
    return {
        "MESSENGER_REDIS_URL": f"redis://{redis.host}:{redis.port}/{API_REDIS_DB}",
        "MESSENGER_CASSANDRA_HOSTS": cassandra.contact_point,
        "MESSENGER_CASSANDRA_KEYSPACE": unique_keyspace(prefix),
        "MESSENGER_JWT_SECRET": JWT_SECRET,
    }


def with_redis_db(env: dict[str, str], db: int) -> dict[str, str]:
    """``env`` with its Redis (if any) moved to database ``db``.

    Servers sharing a Redis database share its push stream, and one's workers would send the
    other's jobs; tests that count pushes give their server a database of its own.
    """
    url = env.get("MESSENGER_REDIS_URL")
    if url is None:
        return env
    return {**env, "MESSENGER_REDIS_URL": f"{url.rsplit('/', 1)[0]}/{db}"}
