"""AttachmentService paths that API tests cannot time: concurrent completions of one presigned
upload (a client retrying while its first request still works). Real stores: SQLite and S3
on the test S3-compatible server."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from api.settings import Settings
from api.stores import Stores, open_stores
from idgen.clock import SYSTEM_CLOCK
from inbox.attachments.blobs import blob_key, upload_key
from inbox.attachments.port import Attachment, AttachmentState, AttachmentStore
from inbox.attachments.service import AttachmentService
from inbox.attachments.spool import STALE_TEMP_S
from inbox.core.errors import Unavailable
from inbox.core.models import Caller
from inbox.core.participants import Participants
from tests.inbox.test_attachment_contracts import s3_settings

OWNER = Caller(user_id=1001, device_id=2001)


@pytest.fixture
async def stores(tmp_path: Path, s3_server: Any) -> AsyncIterator[Stores]:
    settings = Settings(data_dir=tmp_path, **s3_settings(s3_server))
    async with AsyncExitStack() as stack:
        yield await open_stores(settings, stack, SYSTEM_CLOCK)


def service(stores: Stores, tmp_path: Path) -> AttachmentService:
    return AttachmentService(stores.attachments, stores.blobs, stores.inbox,
                             Participants(stores.groups), stores.next_id, SYSTEM_CLOCK,
                             tmp_path / "spool")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(out, "PNG")
    return out.getvalue()


def attachment_rows(tmp_path: Path) -> int:
    db = next(tmp_path.glob("*.db"), None) or next(tmp_path.rglob("*.sqlite*"))
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM attachments").fetchone()[0])


async def presigned(attachments: AttachmentService, stores: Stores, tmp_path: Path,
                    data: bytes) -> Attachment:
    pending, _ = await attachments.start_upload(OWNER, "photo.png", len(data))
    body = tmp_path / "body"
    body.write_bytes(data)
    await stores.blobs.put_file(upload_key(pending.attachment_id), body, "")
    return pending


async def test_concurrent_completions_answer_the_one_attachment(stores: Stores,
                                                                 tmp_path: Path) -> None:
    attachments = service(stores, tmp_path)
    pending = await presigned(attachments, stores, tmp_path, png())
    outcomes = await asyncio.gather(
        *(attachments.complete_upload(OWNER, pending.attachment_id) for _ in range(2)),
        return_exceptions=True)
    ready = [o for o in outcomes if isinstance(o, Attachment)]
    assert ready, outcomes
    assert all(isinstance(o, Attachment) or isinstance(o, Unavailable) for o in outcomes), \
        outcomes  # never a 404 (or a 500) for an upload that was completed
    for other in outcomes:
        if isinstance(other, Unavailable):
            assert other.retry_after_s is not None  # "retry": then it answers the same
    again = await attachments.complete_upload(OWNER, pending.attachment_id)
    assert again == ready[0]
    assert again.state is AttachmentState.READY
    # The image and its one thumbnail: the loser's thumbnail is not left behind.
    assert attachment_rows(tmp_path) == 2


class OutageOnce:
    """The real AttachmentStore, whose first ``complete`` fails as during an outage."""

    def __init__(self, store: AttachmentStore) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def complete(self, attachment: Attachment,
                       expected: AttachmentState = AttachmentState.PENDING) -> bool:
        if not self.failed and attachment.parent_id is None:
            self.failed = True
            raise Unavailable("the attachment store is unavailable; retry later")
        return await self._store.complete(attachment, expected)


async def test_an_outage_while_completing_an_image_keeps_the_upload(stores: Stores,
                                                                    tmp_path: Path) -> None:
    attachments = service(stores, tmp_path)
    pending = await presigned(attachments, stores, tmp_path, png())
    attachments.store = OutageOnce(stores.attachments)
    with pytest.raises(Unavailable):
        await attachments.complete_upload(OWNER, pending.attachment_id)
    ready = await attachments.complete_upload(OWNER, pending.attachment_id)  # the retry
    assert ready.state is AttachmentState.READY and ready.width == 64


class CollectedRightAfterPut:
    """The blob store as a collection racing an upload of the same bytes sees it: the
    collector checked that no row held the hash just before the upload recorded its row, and
    its delete lands just after the upload wrote the blob."""

    def __init__(self, blobs: Any) -> None:
        self._blobs = blobs
        self.collected: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blobs, name)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await self._blobs.put_file(key, path, content_type)
        if not self.collected:
            self.collected.append(key)
            await self._blobs.delete(key)


async def test_an_upload_whose_blob_a_racing_collection_deleted_writes_it_again(
        stores: Stores, tmp_path: Path) -> None:
    racing = CollectedRightAfterPut(stores.blobs)
    attachments = AttachmentService(stores.attachments, racing, stores.inbox,
                                    Participants(stores.groups), stores.next_id, SYSTEM_CLOCK,
                                    tmp_path / "spool")

    async def body() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7 the same bytes as a collected upload"

    ready = await attachments.upload(OWNER, "notes.pdf", body(), None)
    assert racing.collected == [blob_key(ready.sha256)]
    assert await stores.blobs.size(blob_key(ready.sha256)) == ready.size


async def test_collection_drops_spool_files_a_crash_left_but_not_live_ones(
        stores: Stores, tmp_path: Path) -> None:
    attachments = service(stores, tmp_path)
    attachments.spool_dir.mkdir(parents=True, exist_ok=True)
    crashed, live = attachments.spool_dir / "upload-crashed", attachments.spool_dir / "upload-live"
    crashed.write_bytes(b"half an upload")
    live.write_bytes(b"an upload still arriving")
    an_hour_ago = time.time() - STALE_TEMP_S - 60
    os.utime(crashed, (an_hour_ago, an_hour_ago))
    await attachments.collect()
    assert not crashed.exists() and live.exists()
