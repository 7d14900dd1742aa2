"""The test harness starts, stops and restarts real Redis and Cassandra servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
import redis

from tests.servers.cassandra_server import CassandraServer, cql_session, unique_keyspace
from tests.servers.redis_server import RedisServer, free_ports, port_open

if TYPE_CHECKING:  # not imported at run time: pytest loads the module as a plugin
    from tests.servers.fixtures import CassandraEndpoint, RedisEndpoint



@contextmanager
def _session(endpoint: CassandraEndpoint, keyspace: str | None = None) -> Iterator[Any]:
    with cql_session(endpoint.host, endpoint.port, keyspace) as session:
        yield session


def _create_table(endpoint: CassandraEndpoint, keyspace: str) -> None:
    with _session(endpoint) as session:
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(f"CREATE TABLE {keyspace}.notes (id int PRIMARY KEY, body text)")


def _write(endpoint: CassandraEndpoint, keyspace: str, row_id: int, body: str) -> None:
    with _session(endpoint, keyspace) as session:
        session.execute("INSERT INTO notes (id, body) VALUES (%s, %s)", (row_id, body))


def _read(endpoint: CassandraEndpoint, keyspace: str) -> dict[int, str]:
    with _session(endpoint, keyspace) as session:
        return {row.id: row.body for row in session.execute("SELECT id, body FROM notes")}


def test_redis_answers_ping(redis_server: RedisEndpoint) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping()
        key = f"harness:{unique_keyspace('k')}"
        client.set(key, b"v", ex=60)
        assert client.get(key) == b"v"
        client.delete(key)
    finally:
        client.close()
    assert redis_server.url.startswith("redis://")


def test_redis_restart_empty_loses_data_and_keeps_port(fresh_redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(fresh_redis_server.url)
    try:
        client.set("k", b"v")
        port = fresh_redis_server.port
        fresh_redis_server.restart_empty()
        assert fresh_redis_server.port == port
        assert fresh_redis_server.url == f"redis://127.0.0.1:{port}/0"
        assert client.get("k") is None  # redis-py reconnects to the new, empty process
        assert client.ping()
    finally:
        client.close()


def test_redis_stop_and_close_clean_up() -> None:
    with RedisServer() as server:
        assert server.owned
        port, log_dir = server.port, server.log_path.parent
        server.stop()
        assert not server.running
        assert not port_open("127.0.0.1", port)
        server.start()
        assert server.port == port and port_open("127.0.0.1", port)
    assert not server.running
    assert not log_dir.exists()


def test_redis_failed_start_reports_log_tail() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = RedisServer(port=squatter.getsockname()[1])
        try:
            with pytest.raises(RuntimeError, match="(?i)address already in use"):
                server.start()
        finally:
            server.close()


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5


def test_unique_keyspace_is_a_fresh_identifier() -> None:
    first, second = unique_keyspace("harness"), unique_keyspace("harness")
    assert first != second
    assert first.startswith("harness_") and first.isidentifier() and len(first) <= 48
    with pytest.raises(ValueError):
        unique_keyspace("Bad-Name")


def test_external_cassandra_hosts_parse() -> None:
    from tests.servers.fixtures import ExternalCassandra  # already loaded as a plugin

    assert ExternalCassandra.parse("10.0.0.5:9142").contact_point == "10.0.0.5:9142"
    assert ExternalCassandra.parse("db").port == 9042
    assert not ExternalCassandra.parse("db:9042").owned


def test_cassandra_round_trip(cassandra_server: CassandraEndpoint) -> None:
    keyspace = unique_keyspace("harness")
    _create_table(cassandra_server, keyspace)
    try:
        _write(cassandra_server, keyspace, 1, "hello")
        assert _read(cassandra_server, keyspace) == {1: "hello"}
    finally:
        with _session(cassandra_server) as session:
            session.execute(f"DROP KEYSPACE {keyspace}")
    host, port = cassandra_server.contact_point.rsplit(":", 1)
    assert (host, int(port)) == (cassandra_server.host, cassandra_server.port)


def test_cassandra_stop_start_keeps_data(own_cassandra_server: CassandraServer) -> None:
    server = own_cassandra_server
    keyspace = unique_keyspace("restart")
    _create_table(server, keyspace)
    _write(server, keyspace, 1, "before stop")
    port = server.port

    server.stop()
    assert not server.running and not port_open(server.host, port)
    server.start()

    assert server.port == port
    assert _read(server, keyspace) == {1: "before stop"}


def test_cassandra_comes_back_after_kill(own_cassandra_server: CassandraServer) -> None:
    server = own_cassandra_server
    keyspace = unique_keyspace("crash")
    _create_table(server, keyspace)
    port = server.port

    server.kill()  # schema changes are flushed at once, so the table survives the crash
    assert not server.running
    server.start()

    assert server.port == port
    _write(server, keyspace, 2, "after crash")
    assert _read(server, keyspace) == {2: "after crash"}
