"""A real S3-compatible server for tests: moto's server mode (``moto[server]`` from the dev
extras) on a free loopback port, in a process of its own like the Redis and Cassandra ones."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from tests.servers.redis_server import ServerProcess, free_ports

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"  # noqa: S105 (moto accepts any)


class S3Server(ServerProcess):
    """``python -m moto.server`` on 127.0.0.1; ``endpoint`` is its URL."""

    name = "s3"

    def __init__(self) -> None:
        super().__init__()
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("S3Server has not been started")
        return self._port

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self.running:
            return
        if self._port is None:
            self._port = free_ports(1)[0]
        self._launch([sys.executable, "-m", "moto.server", "-H", self.host,
                      "-p", str(self._port)])

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):  # noqa: S310
                return True
        except (urllib.error.URLError, OSError) as exc:
            self._probe_error = f"({exc})"
            return False
