"""What the load runs against: a server (and its stores) that this tool starts, or one at a URL.

Production starts a Redis and a Cassandra node from ``tests.servers`` (or uses the given ones)
and a server on a fresh keyspace, dropped at the end when the Cassandra is not ours. Send rate
limits are raised so that they never cap the load. The processes to watch are found by the
ports they listen on.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.load.procstat import pid_listening_on

UNCAPPED = {
    f"MESSENGER_{limit}_{knob}": "1000000000"
    for limit in ("SEND", "SIGNUPS_PER_ADDRESS", "UPGRADES_PER_ADDRESS",
                  "LOGIN_FAILURES_PER_ADDRESS", "LOGIN_FAILURES_PER_USER", "UPGRADES_PER_NODE")
    for knob in ("RATE_PER_S", "BURST")
}
"""Every limit raised out of the way: the load comes from one address, far past normal."""
NODE_ADMISSION = ("MESSENGER_UPGRADES_PER_NODE_RATE_PER_S", "MESSENGER_UPGRADES_PER_NODE_BURST")


def admission_env(spec: str) -> dict[str, str | None]:
    """The server's node admission for ``--node-admission``: ``off`` keeps it uncapped,
    ``default`` unsets it (the server's defaults), ``RATE,BURST`` sets it (None: unset)."""
    if spec == "off":
        return {}
    if spec == "default":
        return dict.fromkeys(NODE_ADMISSION)
    rate, _, burst = spec.partition(",")
    try:
        values = [str(float(rate)), str(int(burst))]
    except ValueError:
        raise ValueError(f"--node-admission: off, default or RATE,BURST, not {spec!r}") from None
    return dict(zip(NODE_ADMISSION, values, strict=True))
SERVER_START_TIMEOUT_S = 180.0


@dataclass
class Target:
    """A running server, where its stores are, and which processes to watch."""

    mode: str
    url: str
    redis_url: str | None = None
    cassandra: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/v1/ws"


def _port(address: str, default: int) -> int:
    parts = urlsplit(address if "//" in address else f"//{address}")
    return parts.port or default


def watch_pids(url: str, redis_url: str | None, cassandra: str | None) -> dict[str, int]:
    """The pids listening on the server's, Redis's and Cassandra's ports (those found)."""
    ports = {"server": _port(url, 80)}
    if redis_url:
        ports["redis"] = _port(redis_url, 6379)
    if cassandra:
        ports["cassandra"] = _port(cassandra, 9042)
    found = {name: pid_listening_on(port) for name, port in ports.items()}
    return {name: pid for name, pid in found.items() if pid is not None}


@contextlib.contextmanager
def running(mode: str, url: str | None = None, redis_url: str | None = None,
            cassandra: str | None = None, settings: dict[str, str | None] | None = None,
            server_root: Path | None = None, workers: int = 1) -> Iterator[Target]:
    """The server at ``url``, or one started here (with its stores, for production) with
    ``settings`` over ``UNCAPPED`` (None: the server's default), ``workers`` processes, and
    the code of the checkout at ``server_root`` (another revision, to compare)."""
    if url is not None:
        url = url.rstrip("/")
        yield Target(mode, url, redis_url, cassandra, watch_pids(url, redis_url, cassandra))
        return
    from tests.api.server import MessengerProcess

    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="load-") as tmp:
        env = {k: v for k, v in {**UNCAPPED, **(settings or {})}.items() if v is not None}
        keyspace = None
        if mode == "production":
            if redis_url is None:
                from tests.servers.redis_server import RedisServer

                redis_url = stack.enter_context(RedisServer()).url
            if cassandra is None:
                from tests.servers.cassandra_server import CassandraServer

                print("starting Cassandra (a minute or so)...", flush=True)
                cassandra = stack.enter_context(CassandraServer()).contact_point
            else:  # someone else's node: leave it as we found it
                keyspace = f"load_{secrets.token_hex(6)}"
                stack.callback(_drop_keyspace, cassandra, keyspace)
            env.update({"MESSENGER_REDIS_URL": redis_url, "MESSENGER_CASSANDRA_HOSTS": cassandra,
                        "MESSENGER_CASSANDRA_KEYSPACE": keyspace or "messenger",
                        "MESSENGER_JWT_SECRET": secrets.token_urlsafe(48)})  # fmt: skip
        server = MessengerProcess(Path(tmp) / "data", env, cwd=server_root,
                                  args=("--workers", str(workers)) if workers > 1 else ())
        server.start(SERVER_START_TIMEOUT_S)
        stack.callback(server.stop)
        yield Target(mode, server.url, redis_url, cassandra,
                     watch_pids(server.url, redis_url, cassandra), server.log_path)


def _drop_keyspace(contact: str, keyspace: str) -> None:
    from tests.servers.cassandra_server import cql_session

    host, _, port = contact.partition(":")
    with cql_session(host, int(port or 9042), timeout=60) as session:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
