"""How ``inbox.storage.cql_writes`` cuts rows into batches (pure; the combiner's I/O is covered by
tests/inbox/test_store_cassandra.py against a real node)."""

from __future__ import annotations

from dataclasses import dataclass

from inbox.storage.cql_writes import (
    BATCH_MAX_BYTES,
    BATCH_MAX_STATEMENTS,
    as_request,
    chunks,
    row_bytes,
)


@dataclass
class Row:
    """Stands in for a bound statement: only its serialized ``values`` are looked at."""

    values: list[bytes | None]


def _row(text_bytes: int = 10) -> Row:
    return Row([b"\x00" * 8, b"t" * text_bytes, None])


def test_row_bytes_counts_text_not_numbers() -> None:
    assert row_bytes(_row(10)) - row_bytes(_row(0)) == 10
    assert row_bytes(Row([b"\x00" * 8, None])) == row_bytes(Row([]))


def test_chunks_respect_the_row_limit_and_keep_order() -> None:
    rows = [_row() for _ in range(2 * BATCH_MAX_STATEMENTS + 3)]
    cut = chunks(rows)
    assert [len(c) for c in cut] == [BATCH_MAX_STATEMENTS, BATCH_MAX_STATEMENTS, 3]
    assert [r for c in cut for r in c] == rows


def test_chunks_respect_the_byte_limit_and_big_rows_go_alone() -> None:
    half = BATCH_MAX_BYTES // 2
    rows = [_row(half - 400), _row(half - 400), _row(half), _row(3 * BATCH_MAX_BYTES), _row()]
    cut = chunks(rows)
    assert [len(c) for c in cut] == [2, 1, 1, 1]
    assert all(sum(map(row_bytes, c)) <= BATCH_MAX_BYTES for c in cut if len(c) > 1)


def test_a_lone_row_is_sent_as_itself() -> None:
    row = _row()
    assert as_request([row]) is row
    assert chunks([]) == []

