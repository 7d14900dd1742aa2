"""File names of uploads: what a client may call an attachment. Pure."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from inbox.core.errors import InvalidInput

MAX_NAME_CHARS = 255


def check_name(name: str) -> str:
    """``name`` as given when it is a plain file name: 1..255 characters, no path (``/``,
    ``\\``), not ``.``/``..``, no control characters. Otherwise ``InvalidInput`` (422):
    a path in a name is refused, never silently cut, so a client learns its mistake."""
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"name must be 1..{MAX_NAME_CHARS} characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidInput("name must be a file name, not a path")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise InvalidInput("name must not contain control characters")
    if name != name.strip():
        raise InvalidInput("name must not start or end with whitespace")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("name must be valid Unicode text") from None
    return name


def content_disposition(name: str, inline: bool) -> str:
    """A ``Content-Disposition`` value naming the file (RFC 6266: an ASCII fallback and the
    UTF-8 name percent-encoded)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
