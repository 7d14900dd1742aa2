"""Production blob store: S3-compatible object storage through aioboto3 (AWS S3, MinIO,
Ceph, R2...).

Large files go up as multipart uploads of ``PART_BYTES`` parts read from the spooled file one
at a time, so memory stays bounded whatever the file's size. Presigned requests let clients
upload and download without the bytes passing through the app (``public_endpoint`` is the
address clients reach the store at, when it differs from the app's).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioboto3
from aiohttp import ClientError as HttpClientError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inbox.attachments.blobs import PresignedRequest
from inbox.core.errors import dependency_failed

PART_BYTES = 8 * 1024 * 1024
"""Multipart part size (S3's minimum is 5 MiB): the most one upload holds in memory."""
CHUNK = 256 * 1024
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


@dataclass(frozen=True, slots=True)
class S3Config:
    """Where the bucket is and how to sign for it (``MESSENGER_ATTACHMENTS_S3_*``)."""

    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    public_endpoint_url: str | None = None
    path_style: bool = True


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


@contextlib.contextmanager
def _failures(operation: str) -> Iterator[None]:
    """Store and network errors as ``Unavailable`` (a 503 naming the object store)."""
    try:
        yield
    except (BotoCoreError, ClientError, HttpClientError, OSError) as exc:
        raise dependency_failed("the object store", operation, exc) from exc


class S3BlobStore:
    """BlobStore over one bucket (see ``inbox.attachments.blobs.BlobStore``)."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._signer: Any = None

    async def open(self, create_bucket: bool = True) -> None:
        """Connect; create the bucket when it is missing and ``create_bucket``."""
        session = aioboto3.Session()
        c = self.config
        botocore_config = Config(signature_version="s3v4", retries={"max_attempts": 3},
                                 s3={"addressing_style": "path" if c.path_style else "virtual"})
        options: dict[str, Any] = {
            "region_name": c.region, "aws_access_key_id": c.access_key_id,
            "aws_secret_access_key": c.secret_access_key, "config": botocore_config}
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=c.endpoint_url, **options))
        self._signer = self._client
        if c.public_endpoint_url and c.public_endpoint_url != c.endpoint_url:
            self._signer = await self._stack.enter_async_context(
                session.client("s3", endpoint_url=c.public_endpoint_url, **options))
        with _failures("opening the bucket"):
            try:
                await self._client.head_bucket(Bucket=c.bucket)
            except ClientError as exc:
                if not (_missing(exc) and create_bucket):
                    raise
                await self._client.create_bucket(Bucket=c.bucket)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        size = (await asyncio.to_thread(path.stat)).st_size
        extra = {"ContentType": content_type} if content_type else {}
        with _failures("an upload"):
            if size <= PART_BYTES:
                body = await asyncio.to_thread(path.read_bytes)
                await self._client.put_object(Bucket=self.config.bucket, Key=key, Body=body,
                                              **extra)
                return
            await self._multipart(key, path, extra)

    async def _multipart(self, key: str, path: Path, extra: dict[str, str]) -> None:
        bucket = self.config.bucket
        started = await self._client.create_multipart_upload(Bucket=bucket, Key=key, **extra)
        upload_id = started["UploadId"]
        parts = []
        try:
            with path.open("rb") as handle:  # noqa: ASYNC230 (reads run on a thread)
                number = 1
                while chunk := await asyncio.to_thread(handle.read, PART_BYTES):
                    done = await self._client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        Body=chunk)
                    parts.append({"PartNumber": number, "ETag": done["ETag"]})
                    number += 1
            await self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(Exception):
                await self._client.abort_multipart_upload(Bucket=bucket, Key=key,
                                                          UploadId=upload_id)
            raise

    async def read(self, key: str, start: int = 0, length: int | None = None
                   ) -> AsyncIterator[bytes]:
        end = "" if length is None else str(start + length - 1)
        options = {"Range": f"bytes={start}-{end}"} if start or length is not None else {}
        with _failures("a download"):
            try:
                answer = await self._client.get_object(Bucket=self.config.bucket, Key=key,
                                                       **options)
            except ClientError as exc:
                if _missing(exc):
                    raise KeyError(key) from None
                raise
            body = answer["Body"]
            try:
                async for chunk in body.iter_chunks(CHUNK):
                    yield chunk
            finally:
                body.close()

    async def size(self, key: str) -> int | None:
        with _failures("a lookup"):
            try:
                head = await self._client.head_object(Bucket=self.config.bucket, Key=key)
            except ClientError as exc:
                if _missing(exc):
                    return None
                raise
        return int(head["ContentLength"])

    async def copy(self, source: str, target: str) -> None:
        bucket = self.config.bucket
        with _failures("a copy"):
            await self._client.copy_object(Bucket=bucket, Key=target,
                                           CopySource={"Bucket": bucket, "Key": source})

    async def delete(self, key: str) -> None:
        with _failures("a delete"):
            await self._client.delete_object(Bucket=self.config.bucket, Key=key)

    async def presign_put(self, key: str, size: int, expires_s: int
                          ) -> PresignedRequest | None:
        params = {"Bucket": self.config.bucket, "Key": key, "ContentLength": size}
        return await self._presign("put_object", "PUT", params, expires_s,
                                   {"Content-Length": str(size)})

    async def presign_get(self, key: str, expires_s: int, content_type: str,
                          disposition: str) -> PresignedRequest | None:
        params = {"Bucket": self.config.bucket, "Key": key,
                  "ResponseContentType": content_type,
                  "ResponseContentDisposition": disposition}
        return await self._presign("get_object", "GET", params, expires_s, {})

    async def _presign(self, operation: str, method: str, params: dict[str, Any],
                       expires_s: int, headers: dict[str, str]) -> PresignedRequest:
        with _failures("signing"):  # local: signing makes no request
            url = await self._signer.generate_presigned_url(operation, Params=params,
                                                            ExpiresIn=expires_s)
        return PresignedRequest(url, method, headers)

    async def ping(self) -> None:
        with _failures("a ping"):
            await self._client.head_bucket(Bucket=self.config.bucket)

    async def close(self) -> None:
        await self._stack.aclose()

