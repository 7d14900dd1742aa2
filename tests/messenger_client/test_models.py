"""API values parsed into typed models (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messenger_client.errors import ProtocolError
from messenger_client.models import (
    Conversation,
    Device,
    Entry,
    Group,
    direct_conversation_id,
    group_conversation_id,
    parse_id,
)


def test_entries_of_every_kind() -> None:
    read = Entry.from_json({"id": "5", "kind": "read", "msg_id": "3", "conversation_id": "d:1:2",
                            "sender_id": "2", "sender_device_id": "8", "up_to_msg_id": "3",
                            "created_at": "2025-01-01T00:00:00.123Z"})
    assert (read.up_to_msg_id, read.body) == (3, None)
    assert read.created_at == datetime(2025, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    event = Entry.from_json({"id": 6, "kind": "group_event", "msg_id": 9, "conversation_id": "g:4",
                             "sender_id": 1, "sender_device_id": 1, "created_at": None,
                             "group": {"group_id": "4", "event": "created"}, "new_field": 1})
    assert event.group == {"group_id": "4", "event": "created"}
    assert event.to_json()["new_field"] == 1  # what a newer server adds is kept
    deleted = Entry.from_json({**read.to_json(), "kind": "delete", "scope": "everyone"})
    assert deleted.scope == "everyone"


def test_other_models() -> None:
    group = Group.from_json({"group_id": "4", "name": "Hiking", "owner_id": "1",
                             "member_ids": ["1", "2"]})
    assert group.member_ids == (1, 2)
    device = Device.from_json({"device_id": "8", "device_name": None, "platform": "cli",
                               "online": True, "cur_max_msg_id": "0", "push": {"provider": "fcm"},
                               "last_seen": None})
    assert (device.push_provider, device.online) == ("fcm", True)
    chat = Conversation.from_json({"conversation_id": "g:4", "kind": "group", "title": "Hiking",
                                   "last_message": None, "unread": 2})
    assert (chat.unread, chat.last_message) == (2, None)
    assert direct_conversation_id(9, 3) == "d:3:9" and group_conversation_id(4) == "g:4"


@pytest.mark.parametrize("value", ["abc", "-1", None, True, 1.5, ""])
def test_bad_ids_are_protocol_errors(value: object) -> None:
    with pytest.raises(ProtocolError):
        parse_id(value)


def test_bad_shapes_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        Entry.from_json(["not", "an", "object"])
    with pytest.raises(ProtocolError):
        Group.from_json({"group_id": "4", "name": "x", "owner_id": "1", "member_ids": "1,2"})
    with pytest.raises(ProtocolError):
        Entry.from_json({"id": "1", "kind": "message", "msg_id": "1", "conversation_id": "c",
                         "sender_id": "1", "sender_device_id": "1", "created_at": "yesterday"})
