"""Provider payload shapes (pure: no server, no event loop)."""

from __future__ import annotations

import json
from dataclasses import replace

from push.message import PushMessage
from push.payload import (
    BODY_MAX_BYTES,
    apns_collapse_id,
    apns_payload,
    fcm_message,
    truncate_utf8,
)


def test_fcm_message_shape(push_message: PushMessage) -> None:
    assert fcm_message(push_message) == {
        "token": "device-token-0123456789",
        "notification": {"title": "Alice", "body": "see you at 8?"},
        "data": {"conversation_id": "d:17:42", "msg_id": "7261", "id": "99"},
        "android": {
            "priority": "HIGH",
            "collapse_key": "d:17:42",
            "notification": {"notification_count": 2, "tag": "d:17:42"},
        },
        "apns": {
            "headers": {"apns-priority": "10", "apns-collapse-id": "d:17:42"},
            "payload": {"aps": {"badge": 2, "thread-id": "d:17:42"}},
        },
    }


def test_apns_payload_shape(push_message: PushMessage) -> None:
    assert apns_payload(push_message) == {
        "aps": {
            "alert": {"title": "Alice", "body": "see you at 8?"},
            "badge": 2,
            "sound": "default",
            "thread-id": "d:17:42",
        },
        "conversation_id": "d:17:42",
        "msg_id": "7261",
        "id": "99",
    }


def test_data_values_are_strings(push_message: PushMessage) -> None:
    for data in (fcm_message(push_message)["data"], apns_payload(push_message)):
        assert all(isinstance(v, str) for k, v in data.items() if k != "aps")


def test_preview_off_sends_no_body(push_message: PushMessage) -> None:
    msg = replace(push_message, body=None)
    assert fcm_message(msg)["notification"] == {"title": "Alice"}
    assert apns_payload(msg)["aps"]["alert"] == {"title": "Alice"}


def test_badge_zero_is_sent_to_clear_the_badge(push_message: PushMessage) -> None:
    msg = replace(push_message, badge=0)
    assert fcm_message(msg)["android"]["notification"]["notification_count"] == 0
    assert fcm_message(msg)["apns"]["payload"]["aps"]["badge"] == 0
    assert apns_payload(msg)["aps"]["badge"] == 0


def test_data_cannot_replace_aps(push_message: PushMessage) -> None:
    msg = replace(push_message, data={"aps": "oops"})
    assert apns_payload(msg)["aps"]["badge"] == 2


def test_short_collapse_key_is_the_collapse_id() -> None:
    assert apns_collapse_id("g:7261487412345678") == "g:7261487412345678"
    assert apns_collapse_id("x" * 64) == "x" * 64


def test_long_collapse_key_is_hashed_stably(push_message: PushMessage) -> None:
    long_key = "g:" + "9" * 70
    collapse_id = apns_collapse_id(long_key)
    assert len(collapse_id.encode()) == 64
    assert collapse_id == apns_collapse_id(long_key)
    assert collapse_id != apns_collapse_id(long_key + "0")
    msg = replace(push_message, collapse_key=long_key)
    assert fcm_message(msg)["apns"]["headers"]["apns-collapse-id"] == collapse_id
    assert fcm_message(msg)["android"]["collapse_key"] == long_key


def test_no_collapse_key_no_collapse_fields(push_message: PushMessage) -> None:
    msg = replace(push_message, collapse_key="")
    assert "collapse_key" not in fcm_message(msg)["android"]
    assert "apns-collapse-id" not in fcm_message(msg)["apns"]["headers"]
    assert "thread-id" not in apns_payload(msg)["aps"]


def test_long_body_is_cut_to_fit_the_4k_payload_limit(push_message: PushMessage) -> None:
    msg = replace(push_message, body="é" * 16384, title="T" * 1000)
    body = apns_payload(msg)["aps"]["alert"]["body"]
    assert len(body.encode()) <= BODY_MAX_BYTES
    assert body.endswith("\u2026") and body.startswith("éé")
    assert len(json.dumps(apns_payload(msg)).encode()) <= 4096
    assert len(json.dumps(fcm_message(msg)).encode()) <= 4096


def test_truncate_utf8_never_splits_a_character() -> None:
    assert truncate_utf8("short", 10) == "short"
    cut = truncate_utf8("日本語のテキスト", 10)
    assert cut == "日本\u2026"
    assert len(cut.encode()) <= 10
