"""A real single-node Cassandra 5.0 on free loopback ports, for tests.

The server jars come from Maven Central (``mvn dependency:copy-dependencies`` over
``.ci/cassandra/pom.xml``) and are cached (``$MESSENGER_CASSANDRA_CACHE`` or ``~/.cache``).
``python -m tests.servers.cassandra_server --fetch`` only fills the cache (CI prefetch);
``--run`` starts a node and prints its contact point until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.servers.redis_server import ServerProcess, free_ports, log_tail, port_open

CASSANDRA_VERSION = "5.0.4"
_KEYSPACE_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,34}")  # + "_" + 12 hex: Cassandra allows 48

_MODULES_EXPORTED = (
    "java.base/jdk.internal.misc", "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.rmi/sun.rmi.registry", "java.rmi/sun.rmi.server", "java.sql/java.sql",
    "java.base/java.lang.ref", "jdk.unsupported/sun.misc", "jdk.compiler/com.sun.tools.javac.file",
    "jdk.attach/sun.tools.attach",
)  # fmt: skip
_MODULES_OPENED = (
    "java.base/java.lang.module", "java.base/jdk.internal.loader", "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect", "java.base/jdk.internal.math",
    "java.base/jdk.internal.module", "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal", "java.base/sun.nio.ch", "java.base/java.io",
    "java.base/java.lang.reflect", "jdk.compiler/com.sun.tools.javac", "java.base/java.lang",
    "java.base/java.util",
)  # fmt: skip
# Cassandra's conf/jvm17-server.options, as far as a test node needs them.
JAVA17_OPTIONS = (
    "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    *(f"--add-exports={module}=ALL-UNNAMED" for module in _MODULES_EXPORTED),
    *(f"--add-opens={module}=ALL-UNNAMED" for module in _MODULES_OPENED),
)
# Single node, no gossip wait, no fsync: the node is up in seconds rather than a minute.
FAST_START_PROPERTIES = (
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.initial_token=0",
    "-Dcassandra.ring_delay_ms=1000",
    "-Dcassandra.skip_sync=true",
)

_YAML = """\
cluster_name: inbox-test
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: {storage_port}
native_transport_port: {native_port}
start_native_transport: true
endpoint_snitch: SimpleSnitch
auto_snapshot: false
data_file_directories: ["{root}/data"]
commitlog_directory: "{root}/commitlog"
hints_directory: "{root}/hints"
saved_caches_directory: "{root}/saved_caches"
cdc_raw_directory: "{root}/cdc_raw"
# Sized for a 2-core test box with a 1 GiB heap; request timeouts keep their defaults.
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_materialized_view_writes: 4
concurrent_compactors: 1
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
key_cache_size: 16MiB
counter_cache_size: 8MiB
file_cache_size: 64MiB
prepared_statements_cache_size: 16MiB
disk_optimization_strategy: ssd
"""

_LOGBACK = """\
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level %date{HH:mm:ss.SSS} [%thread] %logger{0} - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.apache.cassandra" level="INFO"/>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def default_lib_dir() -> Path:
    """``$MESSENGER_CASSANDRA_CACHE/lib``, or the per-user cache for this Cassandra version."""
    env = os.environ.get("MESSENGER_CASSANDRA_CACHE")
    if env:
        return Path(env) / "lib"
    return Path.home() / ".cache/inbox-messenger" / f"cassandra-{CASSANDRA_VERSION}" / "lib"


def ensure_jars(lib_dir: Path | None = None) -> Path:
    """Make sure the Cassandra jars are in ``lib_dir`` (fetching them with Maven if not).

    Maven writes into a sibling temp dir that is renamed into place when complete, so an
    interrupted download never leaves a half-filled cache that looks valid.
    """
    lib = lib_dir or default_lib_dir()
    if lib.is_dir() and any(lib.glob("jamm-*.jar")) and any(lib.glob("cassandra-all-*.jar")):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(f"Cassandra jars missing in {lib} and no `mvn` on PATH to fetch them")
    lib.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-fetch-", dir=lib.parent))
    try:
        pom = Path(__file__).resolve().parents[2] / ".ci" / "cassandra" / "pom.xml"  # repo root
        subprocess.run(
            [mvn, "-q", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
            check=True,
        )  # fmt: skip
        if lib.exists():
            shutil.rmtree(lib)
        staging.rename(lib)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lib


class CassandraServer(ServerProcess):
    """One Cassandra JVM in its own temp dir, owned by the test that made it.

    Ports and data dir are fixed on the first ``start()``; ``start()`` after ``stop()`` or
    ``kill()`` brings the same node back with its data. ``stop()`` drains (memtables are
    flushed), so nothing is lost. ``kill()`` is a crash: the commit log is synced only every
    10 s (``periodic``; ``skip_sync`` also skips fsync), so writes acknowledged in the last
    ~10 s before a kill may be missing after restart; they sometimes survive, sometimes not.
    Schema changes are flushed at once and survive. ``close()`` stops and deletes everything.
    """

    name = "cassandra"
    start_timeout = 180.0
    stop_grace = 60.0

    def __init__(self, heap: str = "1g", lib_dir: Path | None = None) -> None:
        """Prepare a node with ``-Xms``/``-Xmx`` ``heap``; jars from ``lib_dir`` or the cache."""
        super().__init__()
        self._heap = heap
        self._lib_dir = lib_dir
        self._ports: tuple[int, int] | None = None
        self.last_start_seconds: float | None = None
        self.release_version: str | None = None

    @property
    def port(self) -> int:
        """The native transport (CQL) port."""
        if self._ports is None:
            raise RuntimeError("CassandraServer has not been started")
        return self._ports[1]

    @property
    def contact_point(self) -> str:
        """``host:port`` for the driver, in the same form as ``MESSENGER_TEST_CASSANDRA_HOSTS``."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start the node (again) and wait until CQL queries succeed, up to 180 s."""
        if self.running:
            return
        lib = ensure_jars(self._lib_dir)
        if self._ports is None:
            ports = free_ports(2)
            self._ports = (ports[0], ports[1])
        self._write_conf(*self._ports)
        started = time.monotonic()
        self._launch(self._java_argv(lib))
        self.last_start_seconds = time.monotonic() - started

    def _write_conf(self, storage_port: int, native_port: int) -> None:
        for sub in ("conf", "logs", "tmp", "data", "commitlog", "hints", "saved_caches", "cdc_raw"):
            (self.root / sub).mkdir(exist_ok=True)
        yaml = _YAML.format(root=self.root, storage_port=storage_port, native_port=native_port)
        (self.root / "conf" / "cassandra.yaml").write_text(yaml)
        (self.root / "conf" / "logback.xml").write_text(_LOGBACK)

    def _java_argv(self, lib: Path) -> list[str]:
        conf = self.root / "conf"
        jamm = sorted(lib.glob("jamm-*.jar"))[-1]
        return [
            shutil.which("java") or "java",
            f"-Xms{self._heap}", f"-Xmx{self._heap}", "-XX:+UseG1GC",
            "-XX:+PerfDisableSharedMem", "-XX:+ExitOnOutOfMemoryError",
            f"-javaagent:{jamm}",
            *JAVA17_OPTIONS,
            *FAST_START_PROPERTIES,
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={(conf / 'cassandra.yaml').as_uri()}",
            f"-Dlogback.configurationFile={(conf / 'logback.xml').as_uri()}",
            f"-Dcassandra.storagedir={self.root / 'data'}",
            f"-Dcassandra.logdir={self.root / 'logs'}",
            f"-Djava.io.tmpdir={self.root / 'tmp'}",
            "-cp", f"{conf}:{lib}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]  # fmt: skip

    def _ready(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        try:  # the CQL port opens last, but schema or auth set-up may still be settling
            with cql_session(self.host, self.port) as session:
                row = session.execute("SELECT release_version FROM system.local").one()
        except Exception as exc:
            self._probe_error = f"(last error: {exc!r})"
            return False
        self.release_version = str(row.release_version)
        return True


@contextmanager
def cql_session(
    host: str, port: int, keyspace: str | None = None, timeout: float = 10.0
) -> Iterator[Any]:
    """Open a blocking cassandra-driver session; shut its cluster down afterwards.

    For the harness and test set-up; code under test uses its own adapter.
    """
    from cassandra.cluster import (
        EXEC_PROFILE_DEFAULT,
        Cluster,
        ExecutionProfile,
    )
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=timeout)
    cluster = Cluster(
        [host],
        port=port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout,
        control_connection_timeout=timeout,
        # Cassandra 5 speaks v5: asking for it avoids the driver's probe with a newer
        # version, whose refused socket it leaves for the garbage collector (a
        # ResourceWarning in whatever test runs next).
        protocol_version=5,
    )
    try:
        yield cluster.connect(keyspace)
    finally:
        cluster.shutdown()


def unique_keyspace(prefix: str) -> str:
    """Return ``<prefix>_<random hex>``, a fresh unquoted CQL keyspace name.

    ``prefix``: 1-35 lower case letters, digits and underscores, starting with a letter.
    """
    if not _KEYSPACE_PREFIX.fullmatch(prefix):
        raise ValueError(f"keyspace prefix must match {_KEYSPACE_PREFIX.pattern}: {prefix!r}")
    return f"{prefix}_{secrets.token_hex(6)}"


def main(argv: list[str] | None = None) -> int:
    """``--fetch``: fill the jar cache. ``--run``: start a node, print where, wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tests.servers.cassandra_server")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--fetch", action="store_true", help="only download the jars")
    action.add_argument("--run", action="store_true", help="run a node until Ctrl-C")
    parser.add_argument("--heap", default="1g", help="JVM heap, e.g. 1g or 512m")
    args = parser.parse_args(argv)
    if args.fetch:
        print(ensure_jars())
        return 0
    try:
        with CassandraServer(heap=args.heap) as server:
            print(f"Cassandra {server.release_version} up in {server.last_start_seconds:.1f} s")
            print(f"contact point: {server.contact_point}  (log: {server.log_path})", flush=True)
            while server.running:
                time.sleep(1.0)
            print("Cassandra exited:\n" + log_tail(server.log_path), file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
