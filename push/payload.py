"""Provider payloads built from a :class:`PushMessage`. Pure: no I/O, data in, data out.

Both providers cap a notification at 4 KiB, while a chat message may be 16 KiB, so the
preview and the title are cut (on a UTF-8 character boundary, with an ellipsis) to sizes that
leave room for the rest of the payload.
"""

from __future__ import annotations

import hashlib
from typing import Any

from push.message import PushMessage

TITLE_MAX_BYTES = 256
BODY_MAX_BYTES = 1024
APNS_COLLAPSE_ID_MAX_BYTES = 64
_ELLIPSIS = "\u2026"


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Return ``text`` cut so that its UTF-8 encoding fits ``max_bytes``, ending in an ellipsis
    when something was cut. Never splits a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    room = max_bytes - len(_ELLIPSIS.encode("utf-8"))
    return encoded[: max(room, 0)].decode("utf-8", errors="ignore") + _ELLIPSIS


def apns_collapse_id(collapse_key: str) -> str:
    """The ``apns-collapse-id`` for a collapse key: the key itself when it fits APNs' 64-byte
    limit, otherwise a stable hash of it (SHA-256, 64 hex characters), so that every push of
    the same conversation still collapses into one."""
    if len(collapse_key.encode("utf-8")) <= APNS_COLLAPSE_ID_MAX_BYTES:
        return collapse_key
    return hashlib.sha256(collapse_key.encode("utf-8")).hexdigest()


def _alert(msg: PushMessage) -> dict[str, str]:
    alert = {"title": truncate_utf8(msg.title, TITLE_MAX_BYTES)}
    if msg.body is not None:
        alert["body"] = truncate_utf8(msg.body, BODY_MAX_BYTES)
    return alert


def _string_data(msg: PushMessage) -> dict[str, str]:
    # Both providers reject non-string data values; the type says str, this makes it certain.
    return {str(key): str(value) for key, value in msg.data.items()}


def fcm_message(msg: PushMessage) -> dict[str, Any]:
    """The FCM HTTP v1 ``message`` object for ``msg``.

    The badge goes in ``android.notification.notification_count`` and, for iOS devices reached
    through FCM, in ``apns.payload.aps.badge``. The collapse key is the Android collapse key and
    notification tag and the APNs collapse id, so a conversation shows one notification.
    """
    android_notification: dict[str, Any] = {"notification_count": msg.badge}
    android: dict[str, Any] = {"priority": "HIGH", "notification": android_notification}
    apns_headers = {"apns-priority": "10"}
    aps: dict[str, Any] = {"badge": msg.badge}
    if msg.collapse_key:
        android["collapse_key"] = msg.collapse_key
        android_notification["tag"] = msg.collapse_key
        apns_headers["apns-collapse-id"] = apns_collapse_id(msg.collapse_key)
        aps["thread-id"] = msg.collapse_key
    return {
        "token": msg.token,
        "notification": _alert(msg),
        "data": _string_data(msg),
        "android": android,
        "apns": {"headers": apns_headers, "payload": {"aps": aps}},
    }


def apns_payload(msg: PushMessage) -> dict[str, Any]:
    """The APNs JSON payload for ``msg``: an alert with the badge, the default sound and the
    collapse key as ``thread-id``; the data keys sit beside ``aps`` (which they cannot
    replace)."""
    aps: dict[str, Any] = {"alert": _alert(msg), "badge": msg.badge, "sound": "default"}
    if msg.collapse_key:
        aps["thread-id"] = msg.collapse_key
    return {**_string_data(msg), "aps": aps}
