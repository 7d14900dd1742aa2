"""Builds the push senders from settings: FCM and APNs when configured, logging otherwise."""

from __future__ import annotations

from api.settings import Settings
from push.sender import PushSender
from push.sender_apns import ApnsSender
from push.sender_fcm import FcmSender
from push.sender_log import LogSender


def build_senders(settings: Settings) -> dict[str, PushSender]:
    """One sender per provider; a provider without configuration only logs its pushes."""
    senders: dict[str, PushSender] = {"fcm": LogSender("fcm"), "apns": LogSender("apns")}
    if settings.fcm_credentials is not None:
        senders["fcm"] = FcmSender(settings.fcm_credentials, settings.fcm_endpoint)
    apns = (settings.apns_key_file, settings.apns_key_id, settings.apns_team_id,
            settings.apns_topic)
    if all(apns):
        key_file, key_id, team_id, topic = apns
        assert key_file is not None and key_id and team_id and topic  # noqa: S101 (for mypy)
        senders["apns"] = ApnsSender(
            key_file, key_id, team_id, topic, settings.apns_endpoint, settings.apns_ca_file,
            settings.apns_sandbox,
        )
    return senders
