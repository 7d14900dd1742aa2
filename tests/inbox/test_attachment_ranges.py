"""``Range`` headers on a blob of known size (RFC 9110 section 14): the one range a download
answers with 206, the ones it may ignore (whole blob), and 416 past the end. Pure."""

from __future__ import annotations

import pytest

from inbox.attachments.ranges import ByteRange, RangeNotSatisfiable, parse_range

SIZE = 100


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-9", 0, 9),
    ("bytes=90-", 90, 99),
    ("bytes=90-1000", 90, 99),  # an end past the blob stops at its last byte
    ("bytes=99-99", 99, 99),
    ("bytes=-10", 90, 99),  # the last ten bytes
    ("bytes=-1000", 0, 99),  # a suffix longer than the blob: all of it
    (" Bytes = 5-6 ", 5, 6),  # unit case and spaces around the parts
])
def test_one_satisfiable_range(header: str, start: int, end: int) -> None:
    assert parse_range(header, SIZE) == ByteRange(start, end, SIZE)


@pytest.mark.parametrize("header", [
    None, "", "bytes=", "bytes=-", "bytes=5", "bytes=9-5", "bytes=0-1,5-6", "items=0-5",
    "bytes 0-5", "bytes=a-b", "bytes=+1-5", "bytes=1.5-", "bytes=²-", "bytes=0-²",
    "bytes=-²", "bytes=٣-5",
])
def test_no_malformed_or_multiple_range_is_honoured(header: str | None) -> None:
    """The whole blob is sent instead (a server may ignore any range it does not serve)."""
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=500-", "bytes=-0"])
def test_a_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, SIZE)
    assert (info.value.status, info.value.code) == (416, "range_not_satisfiable")
    assert info.value.http_headers == {"Content-Range": "bytes */100"}


def test_an_empty_blob_satisfies_no_range() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


def test_a_range_names_its_length_and_content_range() -> None:
    part = ByteRange(9, 18, 2000)
    assert (part.length, part.content_range) == (10, "bytes 9-18/2000")
