"""Attachments as messages carry them (``inbox.core.attachments``): the stored form of the
references round-trips, and the preview text that stands for a message of attachments alone
in conversation lists and pushes. Pure."""

from __future__ import annotations

import json

import pytest

from inbox.core.attachments import (
    AttachmentRef,
    preview_text,
    refs_from_doc,
    refs_from_list,
    refs_to_doc,
    refs_to_list,
)

BIG = 2**63 - 1
PHOTO = AttachmentRef(BIG, "beach.jpg", 48_213, "image/jpeg", 1024, 768, BIG - 1)
PNG = AttachmentRef(11, "sketch.png", 900, "image/png", 30, 20, 12)
PDF = AttachmentRef(13, "report.pdf", 9_001, "application/pdf")
NOTES = AttachmentRef(14, "Grüße \"notes\".txt", 5, "text/plain; charset=utf-8")


@pytest.mark.parametrize("refs", [(PHOTO,), (PDF,), (PHOTO, PDF, NOTES, PNG)])
def test_refs_round_trip_through_the_stored_document(refs: tuple[AttachmentRef, ...]) -> None:
    doc = refs_to_doc(refs)
    assert doc is not None and refs_from_doc(doc) == refs
    assert refs_from_doc(doc.encode()) == refs  # a driver may hand back bytes
    assert refs_from_list(refs_to_list(refs)) == refs


def test_a_message_without_attachments_stores_nothing() -> None:
    assert refs_to_doc(()) is None and refs_to_doc([]) is None
    assert refs_from_doc(None) == () and refs_from_doc("") == () and refs_from_doc(b"") == ()


def test_the_stored_document_is_compact_keeps_ints_and_leaves_out_unknowns() -> None:
    doc = refs_to_doc((PDF, PHOTO))
    assert doc is not None and " " not in doc.replace("report.pdf", "")
    assert json.loads(doc) == [
        {"attachment_id": 13, "name": "report.pdf", "size": 9001,
         "content_type": "application/pdf"},
        {"attachment_id": BIG, "name": "beach.jpg", "size": 48213, "content_type": "image/jpeg",
         "width": 1024, "height": 768, "thumbnail_id": BIG - 1}]
    assert "Grüße" in (refs_to_doc((NOTES,)) or "")  # UTF-8 kept, not \\u escapes


@pytest.mark.parametrize(("body", "refs", "preview"), [
    ("hello", (), "hello"),
    ("", (), ""),
    ("look at this", (PHOTO, PDF), "look at this"),  # a body always wins
    ("", (PHOTO,), "Photo"),
    ("", (PHOTO, PNG), "2 photos"),
    ("", (PDF,), "File: report.pdf"),
    ("", (NOTES,), "File: Grüße \"notes\".txt"),
    ("", (PDF, NOTES), "2 files"),
    ("", (PHOTO, PDF), "2 attachments"),
    ("", (PHOTO, PNG, PDF), "3 attachments"),
])
def test_preview_text(body: str, refs: tuple[AttachmentRef, ...], preview: str) -> None:
    assert preview_text(body, refs) == preview


def test_an_image_is_any_image_type() -> None:
    assert PHOTO.is_image and PNG.is_image
    assert AttachmentRef(1, "x.heic", 1, "image/heic").is_image
    assert not PDF.is_image and not NOTES.is_image
