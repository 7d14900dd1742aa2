"""JSON shapes of the client API (docs/api.md, docs/sync.md): ids as decimal strings, times
as RFC 3339 UTC."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from inbox.core.attachments import AttachmentRef, preview_text
from inbox.core.models import (
    ConversationSummary,
    Entry,
    EntryDraft,
    EntryKind,
    Group,
    Message,
    SendReceipt,
)


def rfc3339(ms: int) -> str:
    """``1735689600123`` -> ``2025-01-01T00:00:00.123Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(text: str) -> int:
    """``2025-01-01T00:00:00.123Z`` -> ``1735689600123`` (the inverse of ``rfc3339``)."""
    moment = datetime.fromisoformat(text)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def rfc3339_or_none(ms: int | None) -> str | None:
    return rfc3339(ms) if ms is not None else None


def entry_json(entry: Entry) -> dict[str, Any]:
    """An inbox entry as clients see it; optional fields appear only when set."""
    d = entry.draft
    out: dict[str, Any] = {
        "id": str(entry.id),
        "kind": d.kind.value,
        "msg_id": str(d.msg_id),
        "conversation_id": d.conversation_id,
        "sender_id": str(d.sender_id),
        "sender_device_id": str(d.sender_device_id),
        "created_at": rfc3339(d.created_at_ms),
    }
    if d.body is not None:
        out["body"] = d.body
    if d.up_to_msg_id is not None:
        out["up_to_msg_id"] = str(d.up_to_msg_id)
    if d.scope is not None:
        out["scope"] = d.scope
    if d.group is not None:
        out["group"] = group_event_json(d.group)
    if d.attachments:
        out["attachments"] = attachments_json(d.attachments)
    return out


def attachments_json(refs: tuple[AttachmentRef, ...]) -> list[dict[str, Any]]:
    """A message's attachments as clients see them: ids as strings, unknown dimensions and a
    missing thumbnail left out."""
    out = []
    for ref in refs:
        item: dict[str, Any] = {"attachment_id": str(ref.attachment_id), "name": ref.name,
                                "size": ref.size, "content_type": ref.content_type}
        if ref.width is not None and ref.height is not None:
            item["width"], item["height"] = ref.width, ref.height
        if ref.thumbnail_id is not None:
            item["thumbnail_id"] = str(ref.thumbnail_id)
        out.append(item)
    return out


def entry_from_json(data: dict[str, Any]) -> Entry:
    """The entry ``entry_json`` made ``data`` from (a live event carries the JSON form)."""
    group = data.get("group")
    up_to = data.get("up_to_msg_id")
    draft = EntryDraft(
        kind=EntryKind(data["kind"]),
        msg_id=int(data["msg_id"]),
        conversation_id=data["conversation_id"],
        sender_id=int(data["sender_id"]),
        sender_device_id=int(data["sender_device_id"]),
        created_at_ms=parse_rfc3339(data["created_at"]),
        body=data.get("body"),
        up_to_msg_id=int(up_to) if up_to is not None else None,
        scope=data.get("scope"),
        group=group_event_from_json(group) if group is not None else None,
        attachments=attachments_from_json(data.get("attachments", ())),
    )
    return Entry(int(data["id"]), draft)


def attachments_from_json(items: Iterable[dict[str, Any]]) -> tuple[AttachmentRef, ...]:
    """The inverse of ``attachments_json``: ids back to integers."""
    return tuple(
        AttachmentRef(int(item["attachment_id"]), item["name"], int(item["size"]),
                      item["content_type"], item.get("width"), item.get("height"),
                      int(item["thumbnail_id"]) if "thumbnail_id" in item else None)
        for item in items)


_GROUP_ID_KEYS = ("group_id", "owner_id")
_GROUP_ID_LISTS = ("member_ids", "user_ids")


def group_event_json(group: dict[str, Any]) -> dict[str, Any]:
    """The ``group`` of a ``group_event`` entry with its ids as strings (drafts hold ints)."""
    return _group_ids(group, str)


def group_event_from_json(group: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``group_event_json``: ids back to integers."""
    return _group_ids(group, int)


def _group_ids(group: dict[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    out = dict(group)
    for key in _GROUP_ID_KEYS:
        if key in out:
            out[key] = convert(out[key])
    for key in _GROUP_ID_LISTS:
        if key in out:
            out[key] = [convert(uid) for uid in out[key]]
    return out


def group_json(group: Group) -> dict[str, Any]:
    """A group as ``/v1/groups`` answers it: members in join order, ids as strings."""
    return {
        "group_id": str(group.group_id),
        "name": group.name,
        "owner_id": str(group.owner_id),
        "member_ids": [str(uid) for uid in group.member_ids],
    }


def message_json(message: Message) -> dict[str, Any]:
    """A history item / ``last_message``."""
    return {
        "msg_id": str(message.msg_id),
        "conversation_id": message.conversation_id,
        "sender_id": str(message.sender_id),
        "sender_device_id": str(message.sender_device_id),
        "body": message.body,
        "created_at": rfc3339(message.created_at_ms),
        "attachments": attachments_json(message.attachments),
    }


def conversation_json(summary: ConversationSummary) -> dict[str, Any]:
    """A row of ``GET /v1/conversations``."""
    last = summary.last_message
    return {
        "conversation_id": summary.conversation_id,
        "kind": summary.kind,
        "title": summary.title,
        "last_message": message_json(last) if last is not None else None,
        "preview": preview_text(last.body, last.attachments) if last is not None else None,
        "unread": summary.unread,
    }


def receipt_json(receipt: SendReceipt) -> dict[str, Any]:
    """The answer to a send (REST body, and the fields of the ``sent`` frame)."""
    return {
        "msg_id": str(receipt.msg_id),
        "id": str(receipt.id),
        "conversation_id": receipt.conversation_id,
        "created_at": rfc3339(receipt.created_at_ms),
    }
