"""Which devices get a push for a new inbox entry, and what it says. Pure: data in, jobs out.

A device gets a push for an entry of kind ``message`` when it is active, has a push token and
has no live connection (an online device receives the entry over its socket). The sender's
own devices never get one, nor does anyone for a muted conversation. The job carries the
device's token as it was when planned, so that an "unregistered" answer clears that token
only (compare-and-clear) and never one the device registered afterwards.
"""

from __future__ import annotations

from typing import cast

from inbox.core.attachments import preview_text
from inbox.core.models import Device, Entry, EntryDraft, EntryKind
from push.job import PushJob, job_id_for
from push.message import Provider, PushMessage

PROVIDERS: frozenset[str] = frozenset({"fcm", "apns"})
"""Providers a push can be planned for."""


def push_data(conversation_id: str, msg_id: int, entry_id: int) -> dict[str, str]:
    """The push's ``data``: string values, ``id`` being the entry's position in the
    recipient's inbox (the app syncs up to it when the notification is opened)."""
    return {"conversation_id": conversation_id, "msg_id": str(msg_id), "id": str(entry_id)}


def wants_push(
    device: Device, recipient_id: int, draft: EntryDraft, online_device_ids: set[int]
) -> bool:
    """Whether ``device`` of ``recipient_id`` should be pushed for ``draft`` (kind, mute and
    sender checks aside)."""
    return (
        device.user_id == recipient_id
        and device.active
        and device.push is not None
        and device.push.provider in PROVIDERS
        and bool(device.push.token)
        and device.device_id not in online_device_ids
        and device.device_id != draft.sender_device_id
    )


def push_targets(
    draft: EntryDraft,
    recipient_id: int,
    devices: list[Device],
    online_device_ids: set[int],
    muted: bool,
) -> list[Device]:
    """Who gets a push for ``draft`` in ``recipient_id``'s inbox: the devices to push, each
    once, in ``devices`` order.

    ``devices`` are the recipient's devices, ``online_device_ids`` those with a live
    connection, ``muted`` whether the recipient muted the conversation. None for entries
    other than messages, for the sender's own inbox, or for a muted conversation. Decided
    before the badge is counted, so that nobody's unread total is read for nothing.
    """
    if draft.kind is not EntryKind.MESSAGE or recipient_id == draft.sender_id or muted:
        return []
    targets: list[Device] = []
    seen: set[int] = set()
    for device in devices:
        if device.device_id in seen or not wants_push(device, recipient_id, draft,
                                                      online_device_ids):
            continue
        seen.add(device.device_id)
        targets.append(device)
    return targets


def unacked_to_push(
    device_id: int, recipient_id: int, devices: list[Device], entries: list[Entry]
) -> tuple[Device, list[Entry]] | None:
    """Of ``entries``, sent live to device ``device_id`` of ``recipient_id`` and not acked in
    time, those that get a push now, with the device as it is stored (None: none do).

    ``devices`` are the recipient's devices as stored. An entry at or below the device's
    stored cursor was acked after all (on another socket or node, or over REST): no push.
    The others get one if ``push_targets`` would give one to the device were it offline (a
    message from another user, the device active with a push token); mutes are the
    caller's to check.
    """
    device = next((d for d in devices if d.device_id == device_id), None)
    if device is None:
        return None
    keep = [e for e in entries if e.id > device.cur_max_msg_id
            and push_targets(e.draft, recipient_id, [device], set(), muted=False)]
    return (device, keep) if keep else None


def push_jobs(
    draft: EntryDraft,
    recipient_id: int,
    entry_id: int,
    targets: list[Device],
    title: str,
    badge: int,
    preview: bool,
) -> list[PushJob]:
    """One job per device of ``targets`` (``push_targets``' answer) for ``draft`` landing at
    position ``entry_id`` of ``recipient_id``'s inbox.

    ``title`` is the sender's display name (or the group name), ``badge`` the recipient's
    total unread count and ``preview`` whether the message text goes in the body (for a
    message of attachments only, what stands for them: ``Photo``, ``File: <name>``).
    ``first_enqueued_ms`` is the message's creation time, so a push is given up ``max_age``
    after the message was sent.
    """
    data = push_data(draft.conversation_id, draft.msg_id, entry_id)
    body = preview_text(draft.body or "", draft.attachments) if preview else None
    jobs: list[PushJob] = []
    for device in targets:
        target = device.push
        if target is None:  # push_targets keeps only devices with a token
            continue
        message = PushMessage(
            provider=cast(Provider, target.provider),
            token=target.token,
            topic=target.topic,
            title=title,
            body=body,
            data=dict(data),
            badge=max(badge, 0),
            collapse_key=draft.conversation_id,
        )
        jobs.append(
            PushJob(
                job_id=job_id_for(device.device_id, entry_id),
                device_id=device.device_id,
                user_id=recipient_id,
                message=message,
                attempt=1,
                first_enqueued_ms=draft.created_at_ms,
            )
        )
    return jobs


def plan_pushes(
    draft: EntryDraft,
    recipient_id: int,
    entry_id: int,
    devices: list[Device],
    online_device_ids: set[int],
    muted: bool,
    title: str,
    badge: int,
    preview: bool,
) -> list[PushJob]:
    """``push_jobs`` for the ``push_targets`` of one recipient, in one call (see both)."""
    targets = push_targets(draft, recipient_id, devices, online_device_ids, muted)
    return push_jobs(draft, recipient_id, entry_id, targets, title, badge, preview)
