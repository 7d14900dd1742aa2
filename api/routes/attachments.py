"""Attachments: uploads (streamed, or presigned straight to the object store), metadata,
downloads with ``Range``/``ETag``, and presigned download links."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from api.deps import AttachmentsDep, CallerDep
from api.error_docs import AUTHED, WITH_BODY, errors, json_errors
from api.responses import AttachmentOut, LinkOut, UploadOut
from api.schemas import UploadIn
from gateway.wire import rfc3339
from inbox.attachments.port import Attachment
from inbox.attachments.ranges import parse_range
from inbox.attachments.spool import LengthMismatch
from inbox.core.errors import dependency_failed
from inbox.core.ids import parse_id

router = APIRouter(prefix="/v1", tags=["attachments"])

UPLOAD_PATH = "/v1/attachments"
"""The streamed upload: exempt from the JSON body limit (it has its own)."""
CACHE_CONTROL = "private, max-age=31536000, immutable"
"""Content never changes under an id, but only the caller may keep it."""
UPLOAD_ERRORS = errors(*AUTHED, 400, 413, 422)
COMPLETE_ERRORS = errors(*AUTHED, 400, 404, 413, 422)
READ_ERRORS = errors(*AUTHED, 404, 422)
BINARY = {"type": "string", "format": "binary"}


def attachment_json(a: Attachment) -> dict[str, Any]:
    """An attachment as ``AttachmentOut`` (ids as strings; no dimensions for non-images)."""
    out: dict[str, Any] = {"attachment_id": str(a.attachment_id), "name": a.name,
                           "size": a.size, "content_type": a.content_type,
                           "sha256": a.sha256, "created_at": rfc3339(a.created_at_ms)}
    if a.width is not None and a.height is not None:
        out["width"], out["height"] = a.width, a.height
    if a.thumbnail_id is not None:
        out["thumbnail_id"] = str(a.thumbnail_id)
    return out


def declared_length(request: Request) -> int | None:
    """``Content-Length`` when the client sent one (None for a chunked body)."""
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise LengthMismatch("Content-Length is not a number")
    return int(value)


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that goes away mid-body is a short body."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise LengthMismatch("the connection ended before the whole body arrived") from None


@router.post("/attachments", status_code=201, response_model_exclude_unset=True,
             responses=UPLOAD_ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
async def upload(
    request: Request,
    caller: CallerDep,
    attachments: AttachmentsDep,
    name: Annotated[str, Query(description="the file name: 1..255 characters, no path")],
) -> AttachmentOut:
    """Upload a file as the raw request body (any ``Content-Type``: the type is sniffed from
    the bytes). Images lose their metadata and get a thumbnail."""
    attachment = await attachments.upload(caller, name, body_chunks(request),
                                          declared_length(request))
    return AttachmentOut.model_validate(attachment_json(attachment))


@router.post("/attachments/uploads", status_code=201, responses=errors(*AUTHED, *WITH_BODY,
                                                                        501))
async def start_upload(body: UploadIn, caller: CallerDep, attachments: AttachmentsDep
                       ) -> UploadOut:
    """A presigned upload straight to the object store (S3 storage only: 501 otherwise)."""
    attachment, presigned = await attachments.start_upload(caller, body.name, body.size)
    expires = attachments.clock_ms() + attachments.limits.upload_expiry_s * 1000
    return UploadOut(attachment_id=str(attachment.attachment_id), url=presigned.url,
                     method="PUT", headers=presigned.headers, expires_at=rfc3339(expires))


@router.post("/attachments/{attachment_id}/complete", response_model_exclude_unset=True,
             responses=COMPLETE_ERRORS)
async def complete_upload(attachment_id: str, caller: CallerDep, attachments: AttachmentsDep
                          ) -> AttachmentOut:
    """Finish a presigned upload: its bytes are checked, hashed, sniffed (and an image
    cleaned); a repeat answers the same attachment."""
    attachment = await attachments.complete_upload(caller, parse_id(attachment_id,
                                                                    "attachment_id"))
    return AttachmentOut.model_validate(attachment_json(attachment))


@router.get("/attachments/{attachment_id}", response_model_exclude_unset=True,
            responses=READ_ERRORS)
async def info(attachment_id: str, caller: CallerDep, attachments: AttachmentsDep
               ) -> AttachmentOut:
    """An attachment's metadata (the uploader, or a participant of a conversation holding a
    message that carries it; anyone else: 404)."""
    attachment = await attachments.info(caller, parse_id(attachment_id, "attachment_id"))
    return AttachmentOut.model_validate(attachment_json(attachment))


@router.get("/attachments/{attachment_id}/url", responses=READ_ERRORS)
async def link(attachment_id: str, caller: CallerDep, attachments: AttachmentsDep) -> LinkOut:
    """A download link: presigned on S3 storage, else this server's ``/content`` path."""
    aid = parse_id(attachment_id, "attachment_id")
    presigned = await attachments.link(caller, aid)
    expires = attachments.clock_ms() + attachments.limits.link_expiry_s * 1000
    if presigned is None:
        return LinkOut(url=f"/v1/attachments/{aid}/content", direct=False,
                       expires_at=rfc3339(expires))
    return LinkOut(url=presigned.url, direct=True, expires_at=rfc3339(expires))


@router.get("/attachments/{attachment_id}/content",
            responses={200: {"content": {"application/octet-stream": {"schema": BINARY}},
                             "description": "the bytes, with the sniffed type as "
                                            "Content-Type (application/octet-stream here)"},
                       206: {"content": {"application/octet-stream": {"schema": BINARY}},
                             "description": "the requested range"},
                       304: {"description": "unchanged (If-None-Match)"},
                       **json_errors(*AUTHED, 404, 416, 422)})
async def content(attachment_id: str, request: Request, caller: CallerDep,
                  attachments: AttachmentsDep) -> Response:
    """The attachment's bytes; ``Range`` (one range) answers 206, ``If-None-Match`` 304."""
    download = await attachments.download(caller, parse_id(attachment_id, "attachment_id"))
    a = download.attachment
    etag = f'"{a.sha256}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes",
               "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
               "Content-Disposition": download.disposition}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    byte_range = parse_range(wanted, a.size) if if_range in (None, etag) else None
    start, length, status = 0, a.size, 200
    if byte_range is not None:
        start, length, status = byte_range.start, byte_range.length, 206
        headers["Content-Range"] = byte_range.content_range
    chunks = attachments.blobs.read(download.key, start, length)
    try:
        first = await anext(chunks, b"")
    except KeyError as exc:
        raise dependency_failed("the attachment storage", "a read", "blob missing") from exc
    headers["Content-Length"] = str(length)
    return StreamingResponse(_prepend(first, chunks), status_code=status, headers=headers,
                             media_type=a.content_type)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk
