"""Entries survive the trip through their JSON form (a live event carries that form)."""

from __future__ import annotations

import pytest

from gateway.wire import entry_from_json, entry_json, parse_rfc3339, rfc3339
from inbox.core.attachments import AttachmentRef
from inbox.core.models import Entry, EntryDraft, EntryKind

CREATED = 1_735_689_600_123
DRAFTS = [
    EntryDraft(EntryKind.MESSAGE, 7261, "d:17:42", 17, 170, CREATED, body="see you at 8?"),
    EntryDraft(EntryKind.READ, 7261, "d:17:42", 42, 420, CREATED, up_to_msg_id=7261),
    EntryDraft(EntryKind.DELETE, 7261, "d:17:42", 17, 170, CREATED, scope="everyone"),
    EntryDraft(EntryKind.GROUP_EVENT, 9000, "g:5", 17, 170, CREATED, group={
        "group_id": 5, "name": "crew", "owner_id": 17, "member_ids": [17, 42],
        "event": "members_added", "user_ids": [42]}),
    EntryDraft(EntryKind.MESSAGE, 7262, "d:17:42", 17, 170, CREATED, body="", attachments=(
        AttachmentRef(2**60 + 1, "beach.jpg", 48_213, "image/jpeg", 1024, 768, 2**60 + 2),
        AttachmentRef(2**60 + 3, "notes.pdf", 9_001, "application/pdf"))),
]


@pytest.mark.parametrize("draft", DRAFTS, ids=[f"{d.kind.value}{i}" for i, d in enumerate(DRAFTS)])
def test_entry_from_json_inverts_entry_json(draft: EntryDraft) -> None:
    entry = Entry(2**62 + 5, draft)
    assert entry_from_json(entry_json(entry)) == entry


@pytest.mark.parametrize("ms", [0, 999, CREATED, 4_102_444_800_001])
def test_rfc3339_round_trips_to_the_millisecond(ms: int) -> None:
    assert parse_rfc3339(rfc3339(ms)) == ms
