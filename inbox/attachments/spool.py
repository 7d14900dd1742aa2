"""Receiving an upload: its bytes go to a temporary file as they arrive, hashed and counted,
never held whole in memory. The first bytes are kept for sniffing the type."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from inbox.attachments.sniff import SNIFF_BYTES
from inbox.core.errors import DomainError, InvalidInput, TooLarge

FLUSH_BYTES = 1024 * 1024
"""Bytes gathered before one write on a worker thread."""
STALE_TEMP_S = 3600
"""A temporary file untouched this long was left by a crash: a live upload writes to its file
as bytes arrive, and ``--workers`` processes share the directory, so younger files are left
alone."""


class EmptyUpload(InvalidInput):
    code = "empty_attachment"


class AttachmentTooLarge(TooLarge):
    code = "attachment_too_large"


class LengthMismatch(DomainError):
    """The body's length differs from the one declared: 400."""

    status = 400
    code = "length_mismatch"


@dataclass(frozen=True, slots=True)
class Spooled:
    """An upload on disk: its file, length, SHA-256 (hex) and first bytes."""

    path: Path
    size: int
    sha256: str
    head: bytes

    def discard(self) -> None:
        """Delete the file (idempotent)."""
        self.path.unlink(missing_ok=True)


def drop_stale_files(directory: Path, now_s: float, max_age_s: float = STALE_TEMP_S) -> int:
    """Delete the files of ``directory`` not modified for ``max_age_s``; how many went."""
    dropped = 0
    with contextlib.suppress(FileNotFoundError):
        for temp in directory.iterdir():
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to drop
                if temp.stat().st_mtime < now_s - max_age_s:
                    temp.unlink()
                    dropped += 1
    return dropped


def check_declared(declared: int | None, max_bytes: int) -> None:
    """Refuse a declared length before reading anything: 0 (empty) or over ``max_bytes``."""
    if declared is None:
        return
    if declared == 0:
        raise EmptyUpload("the upload is empty")
    if declared > max_bytes:
        raise AttachmentTooLarge(f"the upload is {declared} bytes; the limit is {max_bytes}")


async def spool(chunks: AsyncIterator[bytes], directory: Path, max_bytes: int,
                declared: int | None = None) -> Spooled:
    """Write ``chunks`` to a new file in ``directory``. ``AttachmentTooLarge`` as soon as
    more than ``max_bytes`` arrived, ``EmptyUpload`` for nothing, ``LengthMismatch`` when
    ``declared`` is given and differs; the file is gone whenever this raises."""
    check_declared(declared, max_bytes)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=directory, prefix="upload-")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    head = b""
    pending: list[bytes] = []
    pending_bytes = 0
    try:
        with open(fd, "wb") as handle:  # noqa: ASYNC230 (writes run on a thread)
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise AttachmentTooLarge(f"the upload is over the limit of {max_bytes} "
                                             "bytes")
                if declared is not None and size > declared:
                    raise LengthMismatch(f"the body is longer than the {declared} bytes "
                                         "declared")
                digest.update(chunk)
                if len(head) < SNIFF_BYTES:
                    head += chunk[:SNIFF_BYTES - len(head)]
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= FLUSH_BYTES:
                    await asyncio.to_thread(handle.writelines, pending)
                    pending, pending_bytes = [], 0
            await asyncio.to_thread(handle.writelines, pending)
        if size == 0:
            raise EmptyUpload("the upload is empty")
        if declared is not None and size != declared:
            raise LengthMismatch(f"the body is {size} bytes, {declared} were declared")
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)  # noqa: ASYNC240 (also when cancelled: no await)
        raise
    return Spooled(path, size, digest.hexdigest(), head)


def hash_file(path: Path) -> str:
    """The SHA-256 (hex) of a file (blocking: run it on a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(FLUSH_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
