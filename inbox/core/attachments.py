"""Attachments as messages carry them: the reference a message holds, its stored form, and the
text that stands for it where a message has no body (push previews, conversation lists).

Pure data and functions; the attachment feature (``inbox.attachments``) owns uploads, blobs
and who may download what.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_ATTACHMENTS = 10
"""Attachments one message may carry."""


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """One attachment of a message: what a client needs to show it without fetching it
    (name, size, sniffed type, pixel size and thumbnail of an image)."""

    attachment_id: int
    name: str
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None
    thumbnail_id: int | None = None

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


_FIELDS = ("attachment_id", "name", "size", "content_type", "width", "height", "thumbnail_id")


def refs_to_doc(refs: Sequence[AttachmentRef]) -> str | None:
    """The compact JSON stored beside an entry or a message; None when there are none (so
    no column is written for a message without attachments)."""
    if not refs:
        return None
    return json.dumps(refs_to_list(refs), separators=(",", ":"), ensure_ascii=False)


def refs_from_doc(raw: str | bytes | None) -> tuple[AttachmentRef, ...]:
    """Inverse of ``refs_to_doc`` (None or empty: no attachments)."""
    return refs_from_list(json.loads(raw)) if raw else ()


def refs_from_list(docs: Sequence[dict[str, Any]]) -> tuple[AttachmentRef, ...]:
    """Inverse of ``refs_to_list``."""
    return tuple(AttachmentRef(**{k: doc[k] for k in _FIELDS if k in doc}) for doc in docs)


def refs_to_list(refs: Sequence[AttachmentRef]) -> list[dict[str, Any]]:
    """Plain dicts (ints kept) for JSON documents that embed references (push jobs)."""
    return [{k: getattr(r, k) for k in _FIELDS if getattr(r, k) is not None} for r in refs]


def preview_text(body: str, refs: Sequence[AttachmentRef]) -> str:
    """The text that stands for a message in a list or a notification: its body, or for a
    message of attachments only ``Photo`` / ``3 photos`` / ``File: report.pdf`` /
    ``2 files`` / ``3 attachments``."""
    if body or not refs:
        return body
    images = sum(1 for r in refs if r.is_image)
    if images == len(refs):
        return "Photo" if images == 1 else f"{images} photos"
    if len(refs) == 1:
        return f"File: {refs[0].name}"
    return f"{len(refs)} files" if images == 0 else f"{len(refs)} attachments"
