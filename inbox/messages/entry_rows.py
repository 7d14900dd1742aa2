"""One inbox entry as a table row, shared by the SQLite and Cassandra inbox tables.

Both tables store an entry as ``id`` followed by the draft's fields in ``draft_values`` order
(``group`` and ``attachments`` as compact JSON); only their column names differ. History rows
(``message_from_row``) likewise end with the message's attachments.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from inbox.core.attachments import refs_from_doc, refs_to_doc
from inbox.core.models import Entry, EntryDraft, EntryKind, Message


def draft_values(draft: EntryDraft) -> tuple[Any, ...]:
    """kind, msg_id, conversation_id, sender_id, sender_device_id, created_at_ms, body,
    up_to_msg_id, scope, group JSON, attachments JSON (None where the draft has none)."""
    group = None if draft.group is None else json.dumps(draft.group, separators=(",", ":"))
    return (draft.kind.value, draft.msg_id, draft.conversation_id, draft.sender_id,
            draft.sender_device_id, draft.created_at_ms, draft.body, draft.up_to_msg_id,
            draft.scope, group, refs_to_doc(draft.attachments))  # fmt: skip


def entry_from_row(row: Sequence[Any]) -> Entry:
    """The entry of a row holding ``id`` and then ``draft_values``."""
    draft = EntryDraft(
        kind=EntryKind(row[1]), msg_id=row[2], conversation_id=row[3], sender_id=row[4],
        sender_device_id=row[5], created_at_ms=row[6], body=row[7], up_to_msg_id=row[8],
        scope=row[9], group=json.loads(row[10]) if row[10] is not None else None,
        attachments=refs_from_doc(row[11]),
    )  # fmt: skip
    return Entry(id=int(row[0]), draft=draft)


def message_values(message: Message) -> tuple[Any, ...]:
    """msg_id, conversation_id, sender_id, sender_device_id, body, created_at_ms,
    attachments JSON (None without attachments): a history row's columns in order."""
    return (message.msg_id, message.conversation_id, message.sender_id,
            message.sender_device_id, message.body, message.created_at_ms,
            refs_to_doc(message.attachments))  # fmt: skip


def message_from_row(row: Sequence[Any]) -> Message:
    """The message of a row starting with ``message_values``' columns."""
    return Message(row[0], row[1], row[2], row[3], row[4], row[5], refs_from_doc(row[6]))
