"""HTTP ``Range`` requests on a blob of known size (RFC 9110 section 14). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from inbox.core.errors import DomainError


class RangeNotSatisfiable(DomainError):
    """A range wholly past the end: 416 (the answer names the size in ``Content-Range``)."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"the range is outside the {size} bytes of the attachment")
        self.size = size

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start..end`` inclusive of a blob of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range ``header`` asks for, or None to send the whole blob (no header, a
    unit other than bytes, several ranges, or a malformed one: all may be ignored).
    ``RangeNotSatisfiable`` for a range that starts past the end."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not _digits_or_empty(first) or not _digits_or_empty(last):
        return None
    if first == "":
        if last == "" or int(last) == 0:
            return None if last == "" else _unsatisfiable(size)
        start = max(size - int(last), 0)
        return ByteRange(start, size - 1, size)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        _unsatisfiable(size)
    return ByteRange(start, end, size)


def _digits_or_empty(text: str) -> bool:
    """ASCII digits only (RFC 9110's DIGIT): ``str.isdigit`` also takes ``²`` and ``٣``,
    which ``int`` then refuses or reads as a number no client meant."""
    return text == "" or (text.isascii() and text.isdigit())


def _unsatisfiable(size: int) -> ByteRange:
    raise RangeNotSatisfiable(size)
