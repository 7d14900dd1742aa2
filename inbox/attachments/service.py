"""Uploads, sends that name attachments, and who may download what.

An upload is spooled to a temporary file (hashed and counted as it arrives), its type sniffed
from its bytes; an image is decoded, written again without metadata and thumbnailed. Its
metadata is recorded *pending* before its blob is stored and turned *ready* after, so a blob
always has a holder while it is stored (a collection that raced the upload and deleted it is
caught by the upload's check after it turned ready, and the blob written again) and nothing
half-stored is ever served or sent. Blobs are content-addressed: the same bytes are one blob.

Downloads: the uploader, and the participants of a conversation holding a message that
carries the attachment (a message deleted for everyone carries nothing). Anyone else gets the
same 404 as for an unknown id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from idgen.clock import Clock
from idgen.tasks import stop_tasks
from inbox.attachments.blobs import BlobStore, PresignedRequest, blob_key, upload_key
from inbox.attachments.images import clean_image
from inbox.attachments.names import check_name, content_disposition
from inbox.attachments.port import Attachment, AttachmentState, AttachmentStore, Reference
from inbox.attachments.sniff import is_image, sniff
from inbox.attachments.spool import (
    Spooled,
    check_declared,
    drop_stale_files,
    hash_file,
    spool,
)
from inbox.core.attachments import AttachmentRef
from inbox.core.errors import DomainError, InvalidInput, NotFound, Unavailable
from inbox.core.models import Caller, EntryKind, Message
from inbox.core.participants import Participants
from inbox.messages.service import Appends

log = logging.getLogger(__name__)

CLAIM_MARGIN_MS = 60_000
"""A send may name an attachment only while its collection is at least this far away (a
quarter of the grace period when that is shorter)."""
THUMBNAIL_TYPE = "image/jpeg"


class NotSupported(DomainError):
    """A feature the configured storage does not offer: 501."""

    status = 501
    code = "not_supported"


class _TakenOver(Exception):  # noqa: N818 (a signal inside this module, never raised out)
    """Another request is completing (or completed) the same presigned upload."""


class MessageLookup(Protocol):
    """Stored messages (``InboxStore.get_message``)."""

    async def get_message(self, msg_id: int) -> Message | None:
        """The message, None when unknown or deleted for everyone."""
        ...


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    """``MESSENGER_ATTACHMENTS_*``: sizes, the collector's grace period, link lifetimes."""

    max_bytes: int = 100 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    grace_ms: int = 24 * 3600 * 1000
    upload_expiry_s: int = 3600
    link_expiry_s: int = 3600


@dataclass(frozen=True, slots=True)
class Download:
    """What a download serves: the attachment, and where to fetch its bytes."""

    attachment: Attachment
    key: str
    disposition: str


class AttachmentService:
    """Uploads, claims by sends (``AttachmentClaims``), downloads, and the collector's sweep."""

    def __init__(self, store: AttachmentStore, blobs: BlobStore, messages: MessageLookup,
                 participants: Participants, next_id: Callable[[], int], clock: Clock,
                 spool_dir: Path, limits: AttachmentLimits = AttachmentLimits(),
                 image_workers: int = 2) -> None:
        """``image_workers`` bounds how many images are decoded at once (memory)."""
        self.store = store
        self.blobs = blobs
        self._messages = messages
        self._participants = participants
        self._next_id = next_id
        self._clock = clock
        self.spool_dir = spool_dir
        self.limits = limits
        self._images = asyncio.Semaphore(image_workers)

    def clock_ms(self) -> int:
        """Now, by the service's clock (for expiry times in answers)."""
        return self._clock.now_ms()

    # -- uploads -----------------------------------------------------------------------------

    async def upload(self, caller: Caller, name: str, chunks: AsyncIterator[bytes],
                     declared: int | None) -> Attachment:
        """Store an upload streamed through the app; its ready attachment."""
        check_name(name)
        spooled = await spool(chunks, self.spool_dir, self.limits.max_bytes, declared)
        try:
            return await self._ingest(caller.user_id, name, spooled, None)
        finally:
            await asyncio.to_thread(spooled.discard)

    async def start_upload(self, caller: Caller, name: str, size: int
                           ) -> tuple[Attachment, PresignedRequest]:
        """A pending attachment and the presigned request that uploads its bytes straight to
        the object store (``NotSupported`` on local storage)."""
        check_name(name)
        check_declared(size, self.limits.max_bytes)
        now = self._clock.now_ms()
        attachment = Attachment(self._next_id(), caller.user_id, AttachmentState.PENDING,
                                name, size, now, gc_due_ms=now + self._pending_ttl_ms())
        request = await self.blobs.presign_put(upload_key(attachment.attachment_id), size,
                                               self.limits.upload_expiry_s)
        if request is None:
            raise NotSupported("this server stores attachments itself: upload with "
                               "POST /v1/attachments")
        await self.store.create(attachment)
        return attachment, request

    async def complete_upload(self, caller: Caller, attachment_id: int) -> Attachment:
        """Check, hash and sniff what a presigned upload stored, and make it ready; a repeat
        answers the ready attachment. A wrong length discards the upload (400)."""
        pending = await self._own(caller, attachment_id)
        if pending.state is AttachmentState.READY:
            return pending
        key = upload_key(attachment_id)
        stored = await self.blobs.size(key)
        if stored is None:
            raise InvalidInput("nothing was uploaded to the presigned URL yet",
                               code="upload_incomplete")
        try:
            spooled = await spool(self.blobs.read(key), self.spool_dir, self.limits.max_bytes,
                                  pending.size)
        except KeyError:  # a concurrent completion stored it and removed the upload
            return await self._completed_elsewhere(caller, attachment_id)
        except DomainError:
            await self._forget(pending)
            raise
        try:
            return await self._ingest(caller.user_id, pending.name, spooled, pending)
        except _TakenOver:
            return await self._completed_elsewhere(caller, attachment_id)
        finally:
            await asyncio.to_thread(spooled.discard)

    async def _completed_elsewhere(self, caller: Caller, attachment_id: int) -> Attachment:
        """The answer to a completion that another request of the same upload overtook: the
        ready attachment, or a 503 to retry while the other one is still storing it."""
        current = await self._own(caller, attachment_id)
        if current.state is AttachmentState.READY:
            return current
        raise Unavailable("another request is completing this upload; retry",
                          retry_after_s=1)

    def _pending_ttl_ms(self) -> int:
        return self.limits.upload_expiry_s * 1000 + self.limits.grace_ms

    async def _ingest(self, owner_id: int, name: str, spooled: Spooled,
                      pending: Attachment | None) -> Attachment:
        """Sniff, clean an image, record pending, store the blobs, turn ready."""
        media_type = sniff(spooled.head)
        if not is_image(media_type):
            return await self._store(owner_id, name, media_type, spooled.path, spooled.sha256,
                                     spooled.size, pending)
        cleaned = spooled.path.with_name(spooled.path.name + ".clean")
        try:
            async with self._images:
                image = await asyncio.to_thread(clean_image, spooled.path, cleaned, media_type,
                                                self.limits.max_image_pixels)
                sha256 = await asyncio.to_thread(hash_file, cleaned)
                size = (await asyncio.to_thread(cleaned.stat)).st_size
            return await self._store(owner_id, name, media_type, cleaned, sha256, size, pending,
                                     (image.width, image.height), image.thumbnail)
        except InvalidInput:  # bytes that are no image: the upload is discarded
            if pending is not None:
                await self._forget(pending)
            raise
        finally:
            await asyncio.to_thread(cleaned.unlink, missing_ok=True)

    async def _store(self, owner_id: int, name: str, media_type: str, path: Path,
                     sha256: str, size: int, pending: Attachment | None,
                     dimensions: tuple[int, int] | None = None,
                     thumbnail: bytes | None = None) -> Attachment:
        now = self._clock.now_ms()
        due = now + self.limits.grace_ms
        thumb: Attachment | None = None
        if thumbnail is not None:
            thumb_path = path.with_name(path.name + ".thumb")
            await asyncio.to_thread(thumb_path.write_bytes, thumbnail)
            try:
                thumb = await self._store_thumbnail(owner_id, name, thumb_path, len(thumbnail),
                                                    due)
            finally:
                await asyncio.to_thread(thumb_path.unlink, missing_ok=True)
        width, height = dimensions if dimensions is not None else (None, None)
        attachment = Attachment(
            pending.attachment_id if pending else self._next_id(), owner_id,
            AttachmentState.PENDING, name, size, pending.created_at_ms if pending else now,
            media_type, sha256, width, height, thumb.attachment_id if thumb else None,
            gc_due_ms=due)
        thumb_parented = replace(thumb, parent_id=attachment.attachment_id) if thumb else None
        if pending is None:
            await self.store.create(attachment)
        else:  # one request stores a presigned upload; a concurrent one gives way
            attachment = replace(attachment, state=AttachmentState.STORING)
            if not await self.store.complete(attachment):
                if thumb is not None:
                    await self._forget(thumb)
                raise _TakenOver
        if thumb_parented is not None:
            await self.store.complete(thumb_parented)
        await self.blobs.put_file(blob_key(sha256), path, media_type)
        if pending is not None:
            await self.blobs.delete(upload_key(attachment.attachment_id))
        ready = replace(attachment, state=AttachmentState.READY)
        await self.store.complete(ready, expected=attachment.state)
        if await self.blobs.size(blob_key(sha256)) is None:
            # a collection of the same bytes checked for holders before our row existed and
            # deleted the blob after we wrote it: write it again
            await self.blobs.put_file(blob_key(sha256), path, media_type)
        if thumb_parented is not None:
            await self.store.complete(replace(thumb_parented, state=AttachmentState.READY))
        return ready

    async def _store_thumbnail(self, owner_id: int, name: str, path: Path, size: int,
                               due: int) -> Attachment:
        sha256 = await asyncio.to_thread(hash_file, path)
        thumb = Attachment(self._next_id(), owner_id, AttachmentState.PENDING,
                           f"thumbnail-{name}"[:255], size, self._clock.now_ms(),
                           THUMBNAIL_TYPE, sha256, gc_due_ms=due)
        await self.store.create(thumb)
        await self.blobs.put_file(blob_key(sha256), path, THUMBNAIL_TYPE)
        return thumb

    # -- sends -------------------------------------------------------------------------------

    async def claim(self, caller: Caller, attachment_ids: Sequence[int], msg_id: int,
                    conversation_id: str) -> tuple[AttachmentRef, ...]:
        """``AttachmentClaims.claim``: the caller's ready uploads, referenced by ``msg_id``."""
        now = self._clock.now_ms()
        margin = min(CLAIM_MARGIN_MS, self.limits.grace_ms // 4)
        found = []
        for attachment_id in attachment_ids:
            a = await self.store.get(attachment_id)
            if (a is None or a.owner_id != caller.user_id or a.parent_id is not None
                    or a.state is not AttachmentState.READY
                    or (a.gc_due_ms and a.gc_due_ms <= now + margin)):
                raise NotFound(f"no attachment {attachment_id} of yours is ready to send")
            found.append(a)
        await self.store.add_refs([Reference(a.attachment_id, msg_id, conversation_id, now)
                                   for a in found])
        return tuple(a.ref() for a in found)

    # -- downloads ---------------------------------------------------------------------------

    async def info(self, caller: Caller, attachment_id: int) -> Attachment:
        """The attachment, if the caller may fetch it (else NotFound, as for an unknown id)."""
        a = await self.store.get(attachment_id)
        if a is None or a.state is not AttachmentState.READY:
            raise self._not_found(attachment_id)
        subject = a if a.parent_id is None else await self.store.get(a.parent_id)
        if subject is None or not await self._may_read(caller, subject):
            raise self._not_found(attachment_id)
        return a

    async def download(self, caller: Caller, attachment_id: int) -> Download:
        """Where to read the attachment's bytes, and how to name them."""
        a = await self.info(caller, attachment_id)
        inline = is_image(a.content_type)
        return Download(a, blob_key(a.sha256), content_disposition(a.name, inline))

    async def link(self, caller: Caller, attachment_id: int) -> PresignedRequest | None:
        """A presigned download from the object store, None on local storage."""
        d = await self.download(caller, attachment_id)
        return await self.blobs.presign_get(d.key, self.limits.link_expiry_s,
                                            d.attachment.content_type, d.disposition)

    async def _may_read(self, caller: Caller, a: Attachment) -> bool:
        if a.owner_id == caller.user_id:
            return True
        for ref in await self.store.refs(a.attachment_id):
            try:
                await self._participants.require(caller, ref.conversation_id)
            except DomainError:
                continue
            if await self._carries(ref.msg_id, a.attachment_id):
                return True
        return False

    async def _carries(self, msg_id: int, attachment_id: int) -> bool:
        """Whether the stored message (not deleted for everyone) carries the attachment."""
        message = await self._messages.get_message(msg_id)
        return message is not None and any(r.attachment_id == attachment_id
                                            for r in message.attachments)

    @staticmethod
    def _not_found(attachment_id: int) -> NotFound:
        return NotFound(f"no attachment {attachment_id}")

    async def _own(self, caller: Caller, attachment_id: int) -> Attachment:
        a = await self.store.get(attachment_id)
        if a is None or a.owner_id != caller.user_id:
            raise self._not_found(attachment_id)
        return a

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_appended(self, appends: Appends) -> None:
        """``AppendListener``: a message deleted for everyone no longer keeps its attachments;
        they are collected after the grace period unless another message carries them."""
        due = self._clock.now_ms() + self.limits.grace_ms
        for batch, _ in appends:
            draft = batch.draft
            if draft.kind is not EntryKind.DELETE or draft.scope != "everyone":
                continue
            for attachment_id in await self.store.attachments_of(draft.msg_id):
                a = await self.store.get(attachment_id)
                if a is not None and not a.gc_due_ms:
                    await self.store.schedule(attachment_id, due)

    async def collect(self, limit: int = 500) -> int:
        """One sweep: attachments whose time came and that no stored message carries are
        deleted (with their thumbnail, and their blob unless other attachments share it).
        Returns how many were deleted. Spool files a crash left behind go too."""
        now = self._clock.now_ms()
        await asyncio.to_thread(drop_stale_files, self.spool_dir, now / 1000)
        deleted = 0
        for attachment_id, due in await self.store.due(now, limit):
            a = await self.store.get(attachment_id)
            if a is None or a.gc_due_ms != due:  # gone, settled or rescheduled since
                await self.store.unschedule(attachment_id, due)
                continue
            keep_until = await self._kept_until(a, now)
            if keep_until is None:
                await self._forget(a)
                deleted += 1
                continue
            await self.store.schedule(attachment_id, keep_until)
            await self.store.unschedule(attachment_id, due)
        return deleted

    async def _kept_until(self, a: Attachment, now: int) -> int | None:
        """0 to keep ``a`` for good (a message carries it, or its image exists), a later time
        to look again (a send naming it may still be storing its message), None to delete."""
        if a.parent_id is not None:
            parent = await self.store.get(a.parent_id)
            return 0 if parent is not None else None
        if a.state is not AttachmentState.READY:
            return None
        later = None
        for ref in await self.store.refs(a.attachment_id):
            if await self._carries(ref.msg_id, a.attachment_id):
                return 0
            if ref.created_at_ms + self.limits.grace_ms > now:
                later = max(later or 0, ref.created_at_ms + self.limits.grace_ms)
        return later

    async def _forget(self, a: Attachment) -> None:
        """Delete ``a``'s metadata, then its blobs that nothing else holds."""
        await self.store.delete(a)
        if a.thumbnail_id is not None:
            thumb = await self.store.get(a.thumbnail_id)
            if thumb is not None:
                await self._forget(thumb)
        if a.state is not AttachmentState.READY:  # a presigned upload may be left
            await self.blobs.delete(upload_key(a.attachment_id))
        if a.sha256 and not await self.store.holds(a.sha256):
            await self.blobs.delete(blob_key(a.sha256))


class AttachmentCollector:
    """Runs ``AttachmentService.collect`` every ``interval_s`` until closed (every node runs
    one: each step is idempotent, so concurrent sweeps only repeat work)."""

    def __init__(self, service: AttachmentService, interval_s: float) -> None:
        self._service = service
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="attachment-collector")

    async def _run(self) -> None:
        while True:
            try:
                while await self._service.collect() > 0:
                    pass
            except Exception:  # a store outage: try again next time
                log.exception("attachment collection failed")
            await asyncio.sleep(self._interval_s)

    async def close(self) -> None:
        await stop_tasks(self._task)
        self._task = None
