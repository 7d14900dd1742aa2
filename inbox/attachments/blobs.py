"""The blob store port: bytes by key. Backends: ``blobs_local`` (a directory, the embedded
default) and ``blobs_s3`` (S3-compatible object storage, production).

Keys are ``blobs/<sha256 hex>`` for stored content (so the same bytes are stored once) and
``uploads/<attachment id>`` for presigned uploads waiting to be completed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


def blob_key(sha256: str) -> str:
    """Where content with this SHA-256 (hex) is stored."""
    return f"blobs/{sha256}"


def upload_key(attachment_id: int) -> str:
    """Where a presigned upload of ``attachment_id`` lands before it is completed."""
    return f"uploads/{attachment_id}"


@dataclass(frozen=True, slots=True)
class PresignedRequest:
    """A request a client makes to the object store itself: ``method`` on ``url`` with
    ``headers`` (valid for the ``expires_s`` it was signed for)."""

    url: str
    method: str
    headers: dict[str, str] = field(default_factory=dict)


class BlobStore(Protocol):
    """Immutable blobs by key.

    Contract:
    - ``put_file`` stores a file's bytes under a key atomically: a reader sees the whole blob
      or none (never a partial one); putting a key again replaces it whole.
    - ``read`` streams ``length`` bytes from ``start`` (the rest when None); ``size`` is the
      stored length, None for a missing key. Reading a missing key raises ``KeyError``.
    - ``delete`` is idempotent; ``copy`` duplicates a blob under another key (server-side
      where the backend can).
    - ``presign_put`` / ``presign_get`` return requests a client makes to the store directly,
      or None when the backend has no such thing (the local directory).
    - Failures of the backing store raise ``inbox.core.errors.Unavailable``.
    """

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at ``path`` under ``key`` (the caller keeps the file)."""
        ...

    def read(self, key: str, start: int = 0, length: int | None = None
             ) -> AsyncIterator[bytes]:
        """The blob's bytes ``[start, start + length)`` in chunks."""
        ...

    async def size(self, key: str) -> int | None:
        """The blob's length in bytes, None when there is none."""
        ...

    async def copy(self, source: str, target: str) -> None:
        """Store ``source``'s bytes under ``target`` too."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; nothing when it is missing."""
        ...

    async def presign_put(self, key: str, size: int, expires_s: int
                          ) -> PresignedRequest | None:
        """A direct upload of exactly ``size`` bytes to ``key``, or None (not supported)."""
        ...

    async def presign_get(self, key: str, expires_s: int, content_type: str,
                          disposition: str) -> PresignedRequest | None:
        """A direct download of ``key`` answered with these headers, or None."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; ``Unavailable`` otherwise (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
