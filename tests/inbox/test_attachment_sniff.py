"""The type of an upload from its first bytes, whatever the client declared: the formats
recognised, text only when it is clean UTF-8, and everything else a plain download. Pure."""

from __future__ import annotations

import pytest

from inbox.attachments.sniff import OCTET_STREAM, SNIFF_BYTES, is_image, sniff

TAIL = bytes(range(256))[:40]  # arbitrary binary after the signature


@pytest.mark.parametrize(("head", "media_type"), [
    (b"\xff\xd8\xff\xe0" + TAIL, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n" + TAIL, "image/png"),
    (b"GIF87a" + TAIL, "image/gif"),
    (b"GIF89a" + TAIL, "image/gif"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 " + TAIL, "image/webp"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt " + TAIL, "audio/wav"),
    (b"RIFF\x10\x00\x00\x00AVI LIST" + TAIL, "video/x-msvideo"),
    (b"%PDF-1.7\n" + TAIL, "application/pdf"),
    (b"PK\x03\x04" + TAIL, "application/zip"),
    (b"\x1f\x8b\x08" + TAIL, "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c" + TAIL, "application/x-7z-compressed"),
    (b"ID3\x04" + TAIL, "audio/mpeg"),
    (b"OggS\x00" + TAIL, "audio/ogg"),
    (b"fLaC" + TAIL, "audio/flac"),
    (b"\x1aE\xdf\xa3" + TAIL, "video/webm"),
    (b"\x00\x00\x00\x18ftypqt  " + TAIL, "video/quicktime"),
    (b"\x00\x00\x00\x18ftypM4A " + TAIL, "audio/mp4"),
    (b"\x00\x00\x00\x18ftypheic" + TAIL, "image/heic"),
    (b"\x00\x00\x00\x18ftypheix" + TAIL, "image/heic"),
    (b"\x00\x00\x00\x18ftypavif" + TAIL, "image/avif"),
    (b"\x00\x00\x00\x18ftypisom" + TAIL, "video/mp4"),  # any other brand
])
def test_known_signatures(head: bytes, media_type: str) -> None:
    assert sniff(head[:SNIFF_BYTES]) == media_type


@pytest.mark.parametrize("head", [
    b"hello\n", b"tab\tseparated\r\nlines\f", "Grüße, 你好 😀".encode(),
    b"<html><script>alert(1)</script></html>",  # markup is only ever text
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "ab€".encode()[:-1],  # a character cut by the sniff window
    "ab😀".encode()[:-3],
])
def test_clean_utf8_is_plain_text(head: bytes) -> None:
    assert sniff(head) == "text/plain; charset=utf-8"


@pytest.mark.parametrize("head", [
    b"", b"\x00\x01\x02\x03", b"text then NUL\x00", b"escape \x1b[31m",
    b"\xff\xfe\x00\x00", b"caf\xe9 latin-1",  # not UTF-8 before the last bytes
    b"RIFF\x10\x00\x00\x00XXXX" + b"\x00" * 8, b"\x89PNX",
])
def test_anything_else_is_an_octet_stream(head: bytes) -> None:
    assert sniff(head) == OCTET_STREAM


def test_only_types_pillow_decodes_are_images() -> None:
    assert all(is_image(t) for t in ("image/jpeg", "image/png", "image/gif", "image/webp"))
    assert not any(is_image(t) for t in ("image/heic", "image/avif", "image/svg+xml",
                                         "text/plain; charset=utf-8", OCTET_STREAM))
