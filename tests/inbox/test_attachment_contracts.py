"""The BlobStore and AttachmentStore contracts (``inbox/attachments/blobs.py``, ``port.py``),
and attachment references through the InboxStore: one suite on every backend exactly as
``api.stores`` opens it: the embedded set (a local directory, SQLite) and the production set
(S3 on a real S3-compatible server, Cassandra + Redis)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.stores import Stores
from inbox.attachments.blobs import blob_key, upload_key
from inbox.attachments.port import Attachment, AttachmentState, Reference
from inbox.core.attachments import AttachmentRef
from inbox.core.ids import direct_id
from inbox.core.models import AppendBatch, EntryDraft, EntryKind, Message
from tests.inbox.backends import backend_stores
from tests.servers.s3_server import ACCESS_KEY, SECRET_KEY

_ids = itertools.count(int(time.time() * 1000) * 1000)


def _id() -> int:
    return next(_ids)


def s3_settings(s3: Any) -> dict[str, Any]:
    """Settings of a fresh bucket on the test S3 server."""
    return {"attachments_s3_bucket": f"test-{uuid.uuid4().hex[:12]}",
            "attachments_s3_endpoint": s3.endpoint,
            "attachments_s3_access_key_id": ACCESS_KEY,
            "attachments_s3_secret_access_key": SECRET_KEY}


@pytest.fixture(params=["embedded", "production"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    async with backend_stores(request, tmp_path,
                              lambda: s3_settings(request.getfixturevalue("s3_server"))
                              ) as opened:
        yield opened


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / uuid.uuid4().hex
    path.write_bytes(data)
    return path


async def _read(stores: Stores, key: str, start: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in stores.blobs.read(key, start, length)])


# -- BlobStore ---------------------------------------------------------------------------------

async def test_blob_put_read_ranges_size_delete(stores: Stores, tmp_path: Path) -> None:
    data = os.urandom(700_000)  # several read chunks
    key = blob_key(uuid.uuid4().hex)
    assert await stores.blobs.size(key) is None
    await stores.blobs.put_file(key, _file(tmp_path, data), "application/octet-stream")
    assert await stores.blobs.size(key) == len(data)
    assert await _read(stores, key) == data
    assert await _read(stores, key, 10, 5) == data[10:15]
    assert await _read(stores, key, 699_990) == data[699_990:]
    await stores.blobs.put_file(key, _file(tmp_path, b"replaced"), "text/plain")
    assert await _read(stores, key) == b"replaced"
    await stores.blobs.delete(key)
    await stores.blobs.delete(key)  # idempotent
    assert await stores.blobs.size(key) is None
    with pytest.raises(KeyError):
        await _read(stores, key)


async def test_blob_large_file_and_copy(stores: Stores, tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 17)  # over one multipart part on S3
    source, target = blob_key(uuid.uuid4().hex), blob_key(uuid.uuid4().hex)
    await stores.blobs.put_file(source, _file(tmp_path, data), "application/octet-stream")
    await stores.blobs.copy(source, target)
    await stores.blobs.delete(source)
    assert await stores.blobs.size(target) == len(data)
    assert await _read(stores, target) == data


async def test_presigned_requests_reach_the_store_or_are_absent(stores: Stores) -> None:
    key = upload_key(_id())
    put = await stores.blobs.presign_put(key, 5, 60)
    get = await stores.blobs.presign_get(key, 60, "text/plain", "attachment")
    if stores.checks.get("object_store") is None:  # the local directory has none
        assert put is None and get is None
        return
    assert put is not None and get is not None and put.method == "PUT"
    async with httpx.AsyncClient() as http:
        assert (await http.put(put.url, content=b"hello", headers=put.headers)).status_code \
            == 200
        answer = await http.get(get.url)
    assert answer.content == b"hello"  # (moto ignores the response-header overrides)


# -- AttachmentStore ---------------------------------------------------------------------------

def _attachment(owner: int, state: AttachmentState = AttachmentState.READY, due: int = 0,
                sha256: str = "", **fields: Any) -> Attachment:
    return Attachment(_id(), owner, state, "cat.jpg", 123, int(time.time() * 1000),
                      "image/jpeg", sha256 or uuid.uuid4().hex, gc_due_ms=due, **fields)


async def test_create_get_complete_delete(stores: Stores) -> None:
    store = stores.attachments
    pending = _attachment(_id(), AttachmentState.PENDING, sha256="", width=None)
    pending = Attachment(pending.attachment_id, pending.owner_id, pending.state, "a.bin", 9,
                         pending.created_at_ms)
    await store.create(pending)
    assert await store.get(pending.attachment_id) == pending
    ready = Attachment(pending.attachment_id, pending.owner_id, AttachmentState.READY,
                       "a.bin", 9, pending.created_at_ms, "image/png", "ab" * 32, 3, 2, _id(),
                       _id())
    assert await store.complete(ready)
    assert await store.get(pending.attachment_id) == ready
    assert not await store.complete(ready)  # only once
    assert await store.holds("ab" * 32)
    await store.delete(ready)
    await store.delete(ready)
    assert await store.get(ready.attachment_id) is None
    assert not await store.holds("ab" * 32)
    assert not await store.complete(ready)  # gone


async def test_complete_from_storing_is_taken_by_one_request(stores: Stores) -> None:
    """A presigned upload is stored by one request: pending -> storing succeeds once, and
    only storing -> ready follows."""
    store = stores.attachments
    pending = _attachment(_id(), AttachmentState.PENDING, due=0)
    await store.create(pending)
    storing = replace(pending, state=AttachmentState.STORING)
    assert await store.complete(storing)
    assert not await store.complete(storing)  # a second request gives way
    ready = replace(pending, state=AttachmentState.READY)
    assert not await store.complete(ready)  # not pending any more
    assert await store.complete(ready, expected=AttachmentState.STORING)
    assert await store.get(pending.attachment_id) == ready
    assert not await store.complete(ready, expected=AttachmentState.STORING)


async def test_holds_counts_every_attachment_of_a_content(stores: Stores) -> None:
    store = stores.attachments
    sha = uuid.uuid4().hex
    first, second = _attachment(_id(), sha256=sha), _attachment(_id(), sha256=sha)
    await store.create(first)
    await store.create(second)
    await store.delete(first)
    assert await store.holds(sha)
    await store.delete(second)
    assert not await store.holds(sha)


async def test_references_both_ways(stores: Stores) -> None:
    store = stores.attachments
    a, b = _attachment(_id()), _attachment(_id())
    msg = _id()
    refs = [Reference(a.attachment_id, msg, "d:1:2", 5), Reference(b.attachment_id, msg,
                                                                   "d:1:2", 5)]
    await store.add_refs(refs)
    await store.add_refs(refs)  # idempotent
    assert await store.refs(a.attachment_id) == [refs[0]]
    assert sorted(await store.attachments_of(msg)) == sorted([a.attachment_id,
                                                              b.attachment_id])
    assert await store.refs(_id()) == []


async def test_schedule_due_unschedule(stores: Stores) -> None:
    store = stores.attachments
    now = int(time.time() * 1000)
    early, late = _attachment(_id(), due=now - 1000), _attachment(_id(), due=now + 60_000)
    await store.create(early)
    await store.create(late)
    due = await store.due(now, 1000)
    assert (early.attachment_id, now - 1000) in due
    assert all(d <= now for _, d in due)
    assert (late.attachment_id, now + 60_000) not in due
    assert (late.attachment_id, now + 60_000) in await store.due(now + 60_000, 1000)
    await store.schedule(early.attachment_id, 0)
    stored = await store.get(early.attachment_id)
    assert stored is not None and stored.gc_due_ms == 0
    await store.unschedule(early.attachment_id, now - 1000)
    assert (early.attachment_id, now - 1000) not in await store.due(now, 1000)
    await store.schedule(early.attachment_id, now + 5)
    assert (early.attachment_id, now + 5) in await store.due(now + 5, 1000)


# -- references in inboxes and history ---------------------------------------------------------

async def test_entries_and_history_carry_attachments(stores: Stores) -> None:
    alice, bob = _id(), _id()
    refs = (AttachmentRef(_id(), "cat.jpg", 10, "image/jpeg", 4, 3, _id()),
            AttachmentRef(_id(), "report.pdf", 20, "application/pdf"))
    msg_id = stores.next_id()
    cid = direct_id(alice, bob)
    now = int(time.time() * 1000)
    draft = EntryDraft(EntryKind.MESSAGE, msg_id, cid, alice, 1, now, "", attachments=refs)
    await stores.inbox.append(AppendBatch(draft, (alice, bob),
                                          Message(msg_id, cid, alice, 1, "", now, refs)))
    [entry] = (await stores.inbox.read(bob, 0, 10)).entries
    assert entry.draft.attachments == refs and entry.draft.body == ""
    [message] = await stores.inbox.history(cid, None, 10)
    assert message.attachments == refs and message.body == ""
    found = await stores.inbox.get_message(msg_id)
    assert found is not None and found.attachments == refs
    await asyncio.sleep(0)
