"""One attachment as a table row, shared by the SQLite and Cassandra tables (same columns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inbox.attachments.port import Attachment, AttachmentState

COLUMNS = ("attachment_id, owner_id, state, name, size, created_at_ms, content_type, sha256,"
           " width, height, thumbnail_id, parent_id, gc_due_ms")


def attachment_values(a: Attachment) -> tuple[Any, ...]:
    """``a``'s fields in ``COLUMNS`` order (also the Cassandra table's)."""
    return (a.attachment_id, a.owner_id, a.state.value, a.name, a.size, a.created_at_ms,
            a.content_type, a.sha256, a.width, a.height, a.thumbnail_id, a.parent_id,
            a.gc_due_ms)  # fmt: skip


def attachment_from_row(row: Sequence[Any]) -> Attachment:
    """Inverse of ``attachment_values``."""
    return Attachment(int(row[0]), int(row[1]), AttachmentState(row[2]), *row[3:])
