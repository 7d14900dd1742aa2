"""plan_pushes: who gets a push and what it says. Pure: no event loop, no server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from inbox.core.attachments import AttachmentRef
from inbox.core.models import Device, Entry, EntryKind, PushTarget
from push.decision import plan_pushes, unacked_to_push
from push.job import PushJob
from push.payload import apns_payload, fcm_message
from tests.push.support import APNS_TOKEN, FCM_TOKEN, START_MS, device, message_draft

RECIPIENT = 42


def _plan(**overrides: object) -> list[PushJob]:
    args: dict[str, object] = {
        "draft": message_draft(),
        "recipient_id": RECIPIENT,
        "entry_id": 99,
        "devices": [device(1001)],
        "online_device_ids": set(),
        "muted": False,
        "title": "Alice",
        "badge": 3,
        "preview": True,
    }
    args.update(overrides)
    return plan_pushes(**args)  # type: ignore[arg-type]


def test_offline_device_gets_exactly_one_job_with_the_payload() -> None:
    [job] = _plan()

    assert job.job_id == "1001:99"
    assert (job.device_id, job.user_id, job.attempt) == (1001, RECIPIENT, 1)
    assert job.first_enqueued_ms == START_MS
    assert (job.provider, job.token, job.topic) == ("fcm", FCM_TOKEN, None)
    msg = job.message
    assert (msg.title, msg.body, msg.badge, msg.collapse_key) == (
        "Alice",
        "see you at 8?",
        3,
        "d:17:42",
    )
    assert msg.data == {"conversation_id": "d:17:42", "msg_id": "7261", "id": "99"}
    assert all(isinstance(v, str) for v in msg.data.values())


def test_preview_off_omits_the_body() -> None:
    [job] = _plan(preview=False)
    assert job.message.body is None
    assert job.message.title == "Alice"


def test_online_device_gets_none_and_offline_sibling_gets_one() -> None:
    devices = [device(1001), device(1002, provider="apns", token=APNS_TOKEN)]
    assert _plan(devices=devices[:1], online_device_ids={1001}) == []

    [job] = _plan(devices=devices, online_device_ids={1001})
    assert (job.device_id, job.provider, job.token) == (1002, "apns", APNS_TOKEN)


def test_the_senders_own_inbox_gets_none() -> None:
    own = [device(170, user_id=17), device(171, user_id=17)]
    assert _plan(recipient_id=17, devices=own) == []


def test_the_sending_device_never_gets_one() -> None:
    # Notes to self from another device of the same user are still the sender's own.
    draft = message_draft(sender_id=5, sender_device_id=1001)
    assert _plan(draft=draft) == []


def test_muted_conversation_gets_none() -> None:
    assert _plan(muted=True) == []


@pytest.mark.parametrize(
    "dev",
    [
        device(1001, provider=None),
        device(1001, active=False),
        device(1001, user_id=7),
        replace(device(1001), push=PushTarget("webpush", "t")),
        replace(device(1001), push=PushTarget("fcm", "")),
    ],
    ids=["no-token", "inactive", "other-user", "unknown-provider", "empty-token"],
)
def test_devices_that_cannot_be_pushed_get_none(dev: object) -> None:
    assert _plan(devices=[dev]) == []


@pytest.mark.parametrize("kind", [EntryKind.READ, EntryKind.DELETE, EntryKind.GROUP_EVENT])
def test_only_messages_are_pushed(kind: EntryKind) -> None:
    assert _plan(draft=replace(message_draft(), kind=kind)) == []


def test_one_job_per_device_even_if_listed_twice_and_topic_kept() -> None:
    ios = replace(device(1002), push=PushTarget("apns", APNS_TOKEN, "im.inbox.app"))
    jobs = _plan(devices=[device(1001), ios, device(1001)])
    assert [(j.job_id, j.topic) for j in jobs] == [("1001:99", None), ("1002:99", "im.inbox.app")]


def test_group_title_and_ids_are_passed_through() -> None:
    draft = replace(message_draft(), conversation_id="g:12345", msg_id=2**62)
    [job] = _plan(draft=draft, title="Climbing crew", entry_id=2**62 + 7, badge=0)
    assert job.message.title == "Climbing crew"
    assert job.message.collapse_key == "g:12345"
    assert job.message.data["msg_id"] == str(2**62)
    assert job.message.data["id"] == str(2**62 + 7)
    assert job.job_id == f"1001:{2**62 + 7}"
    assert job.message.badge == 0


def _entry(entry_id: int, sender_id: int = 17) -> Entry:
    return Entry(entry_id, message_draft(sender_id=sender_id))


def test_unacked_entries_above_the_stored_cursor_are_pushed_to_the_device_as_stored() -> None:
    stored = replace(device(1001), cur_max_msg_id=100)
    found = unacked_to_push(1001, RECIPIENT, [device(1000), stored],
                            [_entry(99), _entry(100), _entry(101)])
    assert found == (stored, [_entry(101)])  # 99 and 100 were acked elsewhere


@pytest.mark.parametrize("devices", [
    [],  # logged out since
    [device(1001, provider=None)],  # no push token
    [device(1001, active=False)],
    [replace(device(1001), cur_max_msg_id=101)],  # acked on another node, or over REST
], ids=["gone", "no-token", "inactive", "acked"])
def test_no_unacked_push_without_a_reachable_device_or_after_an_ack(devices: list[Device]
                                                                   ) -> None:
    assert unacked_to_push(1001, RECIPIENT, devices, [_entry(101)]) is None


def test_no_unacked_push_for_the_recipient_s_own_messages() -> None:
    own = Entry(101, message_draft(sender_id=RECIPIENT, sender_device_id=1002))
    assert unacked_to_push(1001, RECIPIENT, [device(1001)], [own]) is None


PHOTO = AttachmentRef(5001, "IMG_0042.jpg", 48_213, "image/jpeg", 1024, 768, 5002)
REPORT = AttachmentRef(5003, "Q3 report.pdf", 9_001, "application/pdf")


@pytest.mark.parametrize(("attachments", "preview"), [
    ((PHOTO,), "Photo"),
    ((REPORT,), "File: Q3 report.pdf"),
    ((PHOTO, PHOTO), "2 photos"),
    ((PHOTO, REPORT), "2 attachments"),
])
def test_a_message_of_attachments_alone_is_previewed_by_what_it_carries(
        attachments: tuple[AttachmentRef, ...], preview: str) -> None:
    draft = replace(message_draft(body=""), attachments=attachments)
    fcm_job, apns_job = _plan(draft=draft, devices=[
        device(1001), device(1002, provider="apns", token=APNS_TOKEN)])
    assert fcm_message(fcm_job.message)["notification"] == {"title": "Alice", "body": preview}
    assert apns_payload(apns_job.message)["aps"]["alert"] == {"title": "Alice",
                                                              "body": preview}
    [hidden] = _plan(draft=draft, preview=False)  # preview off: no text, not even "Photo"
    assert "body" not in fcm_message(hidden.message)["notification"]


def test_a_body_beside_attachments_is_the_preview() -> None:
    draft = replace(message_draft(body="from the beach"), attachments=(PHOTO,))
    [job] = _plan(draft=draft)
    assert job.message.body == "from the beach"
