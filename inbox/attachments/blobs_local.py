"""The embedded default's blob store: one file per blob under a directory of the data dir.

Writes go to a temporary file in the same directory tree and are renamed into place, so a
blob is whole or absent, even after a crash. File I/O runs on worker threads, off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from inbox.attachments.blobs import PresignedRequest
from inbox.attachments.spool import drop_stale_files
from inbox.core.errors import dependency_failed

T = TypeVar("T")

CHUNK = 256 * 1024
_KEY = re.compile(r"(blobs|uploads)/[0-9a-f]{1,64}|uploads/[0-9]{1,20}")


class LocalBlobStore:
    """BlobStore over a directory (see ``inbox.attachments.blobs.BlobStore``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"

    async def open(self) -> None:
        """Create the directories; drop temporary files a crash left behind."""
        def prepare() -> None:
            for sub in ("blobs", "uploads", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            drop_stale_files(self._tmp, time.time())

        await self._io("open", prepare)

    def path_of(self, key: str) -> Path:
        """The file of ``key`` (keys are ours, but never a path out of the root)."""
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        target = self.path_of(key)

        def put() -> None:
            temp = self._tmp / uuid.uuid4().hex
            try:
                try:
                    os.link(path, temp)  # same file system: no copy
                except OSError:
                    shutil.copyfile(path, temp)
                os.replace(temp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()

        await self._io("put", put)

    async def read(self, key: str, start: int = 0, length: int | None = None
                   ) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise dependency_failed("the attachment directory", "a read", exc) from exc
        try:
            await asyncio.to_thread(handle.seek, start)
            left = length
            while left is None or left > 0:
                chunk = await asyncio.to_thread(handle.read, CHUNK if left is None
                                                else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, key: str) -> int | None:
        path = self.path_of(key)

        def stat() -> int | None:
            try:
                return path.stat().st_size
            except FileNotFoundError:
                return None

        return await self._io("stat", stat)

    async def copy(self, source: str, target: str) -> None:
        await self.put_file(target, self.path_of(source), "")

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        await self._io("delete", lambda: path.unlink(missing_ok=True))

    async def presign_put(self, key: str, size: int, expires_s: int
                          ) -> PresignedRequest | None:
        return None

    async def presign_get(self, key: str, expires_s: int, content_type: str,
                          disposition: str) -> PresignedRequest | None:
        return None

    async def ping(self) -> None:
        await self._io("ping", self.root.stat)

    async def close(self) -> None:
        return None

    async def _io(self, operation: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except OSError as exc:
            raise dependency_failed("the attachment directory", operation, exc) from exc
