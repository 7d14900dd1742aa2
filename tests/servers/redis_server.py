"""A real ``redis-server`` on a free loopback port, for tests.

Also holds what the test servers share: ``free_ports``, ``log_tail`` and ``ServerProcess``,
a child process in its own temp dir that cannot outlive the test session.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

_PR_SET_PDEATHSIG = 1


def free_ports(count: int = 1) -> list[int]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    All sockets are held open until every port is picked, so the ports differ from each other.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def log_tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a log file, or a note when it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log at {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when the thread that spawned it exits (preexec_fn)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: atexit still applies
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ServerProcess:
    """One server process in its own temp dir: start, stop, kill, close, ``with``.

    Subclasses build the command line and say when the server is ready. The temp dir lives
    until ``close()``, so a server stopped or killed can be started again on the same data.
    ``close()`` is also registered with ``atexit`` as a safety net. Children get their own
    session (a terminal Ctrl-C reaches only pytest, which stops them in order) and, when
    started from the main thread, PR_SET_PDEATHSIG so they die even if pytest is SIGKILLed.
    The signal is tied to the spawning *thread*, hence not set from other threads.
    """

    name = "server"
    owned = True
    start_timeout = 20.0
    stop_grace = 10.0

    def __init__(self) -> None:
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._probe_error = ""

    @property
    def host(self) -> str:
        """The loopback address the server binds."""
        return "127.0.0.1"

    @property
    def root(self) -> Path:
        """The server's temp dir (config, data, log); created on first use."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix=f"inbox-{self.name}-"))
            atexit.register(self.close)
        return self._root

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.root / f"{self.name}.log"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server and wait for a clean exit; SIGKILL after ``stop_grace`` s."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        """Stop the server and delete its temp dir. Safe to call twice."""
        self.stop()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            atexit.unregister(self.close)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:  # e.g. Ctrl-C during a slow start: __exit__ would not run
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the server (again) and wait until it is ready."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the started server answers; may set ``_probe_error`` to explain a no."""
        raise NotImplementedError

    def _launch(self, argv: Sequence[str]) -> None:
        """Spawn ``argv`` logging to ``log_path`` and wait for ``_ready()``, or raise."""
        on_main = threading.current_thread() is threading.main_thread()
        preexec: Callable[[], None] | None = _die_with_parent if on_main else None
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
                preexec_fn=preexec,
            )
        deadline = time.monotonic() + self.start_timeout
        self._probe_error = ""
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code, self._proc = self._proc.returncode, None
                raise RuntimeError(
                    f"{self.name} exited with {code} during start:\n" + log_tail(self.log_path)
                )
            if self._ready():
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"{self.name} not ready after {self.start_timeout} s {self._probe_error}:\n"
            + log_tail(self.log_path)
        )


class RedisServer(ServerProcess):
    """A ``redis-server`` without persistence, owned by the test that made it.

    The port is chosen on the first ``start()`` and kept, so ``restart_empty()`` comes back
    at the same URL. Use as a context manager, or call ``close()``.
    """

    name = "redis"

    def __init__(self, port: int | None = None, executable: str = "redis-server") -> None:
        """Prepare a server; ``port=None`` picks a free port on the first ``start()``."""
        super().__init__()
        self._executable = executable
        self._port = port

    @property
    def port(self) -> int:
        """The TCP port; fixed once the server has first started."""
        if self._port is None:
            raise RuntimeError("RedisServer has not been started")
        return self._port

    @property
    def url(self) -> str:
        """A redis-py URL for database 0."""
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        """Start ``redis-server`` (again) and wait until it answers PING, up to 20 s."""
        if self.running:
            return
        if self._port is None:
            self._port = free_ports(1)[0]
        self._launch([
            shutil.which(self._executable) or self._executable,
            "--port", str(self._port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.root),
        ])  # fmt: skip

    def restart_empty(self) -> None:
        """Crash the server and start it again on the same port with empty memory."""
        self.kill()
        self.start()

    def _ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.makefile("rb").readline(64) == b"+PONG\r\n"
        except OSError as exc:
            self._probe_error = f"({exc})"
            return False
