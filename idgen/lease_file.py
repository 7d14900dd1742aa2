"""Worker-id lease for the embedded default: one process per data dir, worker id 0.

An exclusive ``fcntl.flock`` on a lock file in the data dir. The kernel drops the lock when the
holder exits however it dies, so there is no TTL and nothing to expire. flock locks belong to an
open file description: a second ``FileWorkerLease`` on the same path conflicts even inside the
same process.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from idgen.lease import LeaseLostError, LeaseUnavailableError

EMBEDDED_WORKER_ID = 0


class FileWorkerLease:
    """Lease worker id 0 by holding an exclusive lock on ``path`` (a file in the data dir).

    The holder's pid is written into the file so that a second process can say who is in the
    way. The file itself is never deleted: unlinking a lock file lets two processes lock two
    different files of the same name. The descriptor is not inherited across ``exec``; a child
    made with a bare ``fork()`` shares the lock until it exits.
    """

    def __init__(self, path: Path) -> None:
        """Prepare a lease on the lock file ``path``; nothing is touched until ``acquire``."""
        self._path = path
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self._path

    @property
    def worker_id(self) -> int:
        """Always 0 while held; ``RuntimeError`` if not held."""
        if self._fd is None:
            raise RuntimeError(f"worker-id lease on {self._path} is not held")
        return EMBEDDED_WORKER_ID

    async def acquire(self) -> int:
        """Lock the file and return worker id 0.

        ``LeaseUnavailableError`` if another open lease (this process or another) holds it.
        Never blocks: the lock is taken with ``LOCK_NB`` and the file is a few bytes.
        """
        if self._fd is not None:
            raise RuntimeError(f"worker-id lease on {self._path} is already held")
        self._fd = self._lock()
        return EMBEDDED_WORKER_ID

    async def renew(self) -> None:
        """Check the lock is still ours: held, and ``path`` is still the file we locked.

        If the lock file was deleted or replaced (e.g. the data dir was removed), another
        process could lock the new file, so the lease counts as lost.
        """
        if self._fd is None:
            raise LeaseLostError(f"worker-id lease on {self._path} is not held")
        try:
            current = os.stat(self._path)
        except FileNotFoundError:
            raise LeaseLostError(f"lock file {self._path} was deleted while held") from None
        mine = os.fstat(self._fd)
        if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
            raise LeaseLostError(f"lock file {self._path} was replaced while held")

    async def release(self) -> None:
        """Clear the pid and unlock; a no-op if not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _lock(self) -> int:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise LeaseUnavailableError(
                f"data dir {self._path.parent} is in use by another messenger process "
                f"(pid {holder}); lock file {self._path}"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the lock too
            raise
        return fd


def _read_pid(fd: int) -> str:
    """The pid the holder wrote, or ``unknown`` (it may be between truncate and write)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"
