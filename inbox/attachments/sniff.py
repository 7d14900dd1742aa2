"""The type of an upload, from its first bytes: what a client declares is never trusted.

Pure. Only image types Pillow decodes (JPEG, PNG, GIF, WebP) count as images (they get a
thumbnail and lose their metadata); everything else is served as a download with the type
found here, or ``application/octet-stream`` when none is recognised (never as HTML or script,
whatever the bytes look like).
"""

from __future__ import annotations

SNIFF_BYTES = 64
"""How many leading bytes ``sniff`` looks at."""
OCTET_STREAM = "application/octet-stream"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
)
_FTYP_BRANDS = {b"qt  ": "video/quicktime", b"M4A ": "audio/mp4", b"heic": "image/heic",
                b"heix": "image/heic", b"avif": "image/avif"}


def sniff(head: bytes) -> str:
    """The media type of content starting with ``head`` (at least ``SNIFF_BYTES`` of it when
    the content is that long)."""
    for offset, magic, media_type in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return media_type
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}[
            head[8:12]]
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    if _is_text(head):
        return "text/plain; charset=utf-8"
    return OCTET_STREAM


def is_image(media_type: str) -> bool:
    """Whether uploads of this type are decoded as images (thumbnail, metadata stripped)."""
    return media_type in IMAGE_TYPES


def _is_text(head: bytes) -> bool:
    """UTF-8 without control characters other than whitespace (a cut last character is
    fine): plain text, shown as text, never as markup."""
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return False
        text = head[:exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\t\n\r\f" for ch in text)
