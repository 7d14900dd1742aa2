"""An asyncio face of one cassandra-driver session, shared by every Cassandra adapter.

``CqlSession`` bridges cassandra-driver futures into asyncio (the driver calls back on its own
thread; results hop to the loop with ``call_soon_threadsafe``) and maps driver failures to
``inbox.core.errors.Unavailable``. Only ``connect`` blocks (cluster connect, schema, prepares) and
it runs in a worker thread. Writes that many concurrent callers make go out as shared unlogged
batches (``inbox.storage.cql_writes``).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cassandra import ConsistencyLevel, DriverException, RequestExecutionException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import Statement, tuple_factory

from inbox.core.errors import dependency_failed
from inbox.storage.cassandra_schema import DEFAULT_REPLICATION, create_schema
from inbox.storage.cql_writes import WriteCombiner

_DRIVER_ERRORS = (DriverException, RequestExecutionException, NoHostAvailable, OSError)


class CqlSession:
    """An asyncio face of one cassandra-driver session, with its prepared statements."""

    def __init__(self, cluster: Any, session: Any, prepared: Mapping[str, Any]) -> None:
        """Wrap a connected session; use ``CqlSession.connect``."""
        self._cluster = cluster
        self._session = session
        self.prepared = dict(prepared)
        self._combiner = WriteCombiner(session, self._by_replica, _write_failed)

    @property
    def session(self) -> Any:
        """The driver's session (for tools that measure the driver itself)."""
        return self._session

    @classmethod
    async def connect(
        cls,
        hosts: Sequence[str],
        keyspace: str,
        *,
        statements: Mapping[str, str],
        replication: Mapping[str, Any] = DEFAULT_REPLICATION,
        consistency: str = "LOCAL_QUORUM",
        local_dc: str | None = None,
        request_timeout: float = 5.0,
        migrate: bool = True,
        protocol_version: int = 5,
    ) -> CqlSession:
        """Connect to ``hosts`` (``host`` or ``host:port``), create the schema when
        ``migrate``, prepare ``statements`` (name -> CQL); blocking work runs in a thread."""

        def build() -> CqlSession:
            points = [_contact_point(host) for host in hosts]
            profile = ExecutionProfile(
                load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc)),
                consistency_level=ConsistencyLevel.name_to_value[consistency],
                serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
                request_timeout=request_timeout,
                row_factory=tuple_factory,
            )
            cluster = Cluster(
                points,
                execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                connect_timeout=request_timeout,
                control_connection_timeout=request_timeout,
                protocol_version=protocol_version,
                # The default backs off to 10 minutes: a restarted node would stay "down"
                # to us for minutes. Sends fail with 503 meanwhile, so retry often.
                reconnection_policy=ExponentialReconnectionPolicy(0.5, 5.0),
                # The driver leaves Nagle on: a request larger than a segment then waits for
                # the server's delayed ACK (40 ms on Linux) before its tail is sent.
                sockopts=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            )
            try:
                session = cluster.connect()
                if migrate:
                    create_schema(session, keyspace, replication)
                prepared = {
                    name: session.prepare(_qualify(cql, keyspace))
                    for name, cql in statements.items()
                }
            except BaseException:
                cluster.shutdown()
                raise
            return cls(cluster, session, prepared)

        try:
            return await asyncio.to_thread(build)
        except _DRIVER_ERRORS as exc:
            raise dependency_failed("Cassandra", "connect", exc) from exc

    async def execute(self, name: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run the prepared statement ``name``; its first page of rows (use LIMIT)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[tuple[Any, ...]]] = loop.create_future()

        def done(rows: Any) -> None:
            if not future.done():
                future.set_result(list(rows) if rows is not None else [])

        def failed(exc: BaseException) -> None:
            if not future.done():
                future.set_exception(exc)

        try:
            response = self._session.execute_async(self.prepared[name], params)
            response.add_callbacks(
                lambda rows: loop.call_soon_threadsafe(done, rows),
                lambda exc: loop.call_soon_threadsafe(failed, exc),
            )
            return await future
        except _DRIVER_ERRORS as exc:
            raise dependency_failed("Cassandra", name, exc) from exc

    async def execute_all(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run statements concurrently; ``Unavailable`` if any failed (after all finished).

        Completions are counted on the driver's thread and the loop is woken once, so a
        100-row fan-out costs one cross-thread hop, not 100."""
        try:
            bound = [self.prepared[name].bind(params) for name, params in calls]
        except _DRIVER_ERRORS as exc:
            raise dependency_failed("Cassandra", "connect", exc) from exc
        await self._execute_statements(bound)

    async def write_batched(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run writes like ``execute_all``, but as unlogged batches shared with the other
        writes of this loop iteration (``cql_writes.WriteCombiner``): far fewer requests,
        no atomicity asked for (callers fence by write timestamp). ``Unavailable`` if a
        batch holding one of these rows failed."""
        bound = [self.prepared[name].bind(params) for name, params in calls]
        await self._combiner.write(bound)

    def _by_replica(self, bound: list[Any]) -> list[list[Any]]:
        """Group bound statements by the first replica of their partition (one group when the
        cluster has one node, the common case, without computing tokens)."""
        metadata = self._cluster.metadata
        if len(metadata.all_hosts()) <= 1:
            return [bound]
        groups: dict[Any, list[Any]] = {}
        for stmt in bound:
            replicas = metadata.get_replicas(stmt.keyspace, stmt.routing_key)
            groups.setdefault(replicas[0] if replicas else None, []).append(stmt)
        return list(groups.values())

    async def _execute_statements(self, statements: Sequence[Statement]) -> None:
        """``execute_all`` for ready statements (bound or batches)."""
        if not statements:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        lock = threading.Lock()
        state: dict[str, Any] = {"left": len(statements), "error": None}

        def settle() -> None:
            if not future.done():
                error = state["error"]
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(dependency_failed("Cassandra", "write", error))

        def one_done(error: BaseException | None) -> None:
            with lock:
                if error is not None and state["error"] is None:
                    state["error"] = error
                state["left"] -= 1
                last = state["left"] == 0
            if last:
                loop.call_soon_threadsafe(settle)

        try:
            for statement in statements:
                response = self._session.execute_async(statement)
                response.add_callbacks(lambda _rows: one_done(None), one_done)
        except _DRIVER_ERRORS as exc:
            raise dependency_failed("Cassandra", "connect", exc) from exc
        await future

    async def close(self) -> None:
        """Shut the driver's cluster down (in a thread: it joins the driver's threads)."""
        await asyncio.to_thread(self._cluster.shutdown)


def _write_failed(error: BaseException) -> BaseException:
    return dependency_failed("Cassandra", "write", error)


_TABLE_REF = re.compile(r"\b(FROM|INTO|UPDATE)\s+([a-z_]+)\b")


def _qualify(cql: str, keyspace: str) -> str:
    """Prefix table names with the keyspace (no ``USE``: Cassandra 5 warns about it)."""
    return _TABLE_REF.sub(lambda m: f"{m.group(1)} {keyspace}.{m.group(2)}", cql)


def _contact_point(host: str) -> str | tuple[str, int]:
    name, sep, port = host.strip().rpartition(":")
    return (name, int(port)) if sep and port.isdigit() else host.strip()
