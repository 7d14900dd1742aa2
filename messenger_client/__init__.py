"""Inbox Messenger's Python client: login, live sync with no gap and no duplicate, an outbox
that survives restarts, and the REST API, all async. See docs/client.md.

It depends on ``httpx`` and ``websockets`` only, never on the server's packages.
"""

from messenger_client.backoff import BackoffPolicy
from messenger_client.client import Client, login
from messenger_client.errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    CredentialsError,
    Forbidden,
    InvalidRequest,
    MessengerError,
    NotFound,
    NotLoggedIn,
    ProtocolError,
    RateLimited,
    TooLarge,
    Unavailable,
)
from messenger_client.events import (
    Connected,
    Disconnected,
    Event,
    Presence,
    SendFailed,
    Sent,
    Typing,
)
from messenger_client.models import (
    Attachment,
    Conversation,
    Device,
    Entry,
    Group,
    Message,
    PresenceInfo,
    Receipt,
    Session,
    User,
    direct_conversation_id,
    group_conversation_id,
)
from messenger_client.outbox import OutboxItem
from messenger_client.profile import Profile, default_profile_path
from messenger_client.rest import RestApi, SyncPage

__all__ = [
    "ApiError", "Attachment", "BackoffPolicy", "Client", "Conflict", "Connected",
    "ConnectionFailed", "Conversation", "CredentialsError", "Device", "Disconnected", "Entry",
    "Event", "Forbidden",
    "Group", "InvalidRequest", "Message", "MessengerError", "NotFound", "NotLoggedIn",
    "OutboxItem", "Presence", "PresenceInfo", "Profile", "ProtocolError", "RateLimited",
    "Receipt", "RestApi", "SendFailed", "Sent", "Session", "SyncPage", "TooLarge", "Typing",
    "Unavailable", "User", "default_profile_path", "direct_conversation_id",
    "group_conversation_id", "login",
]
