"""Idempotency keys of the entries the server writes on its own behalf.

A ``read`` entry, a ``group_event`` and a ``delete`` "for me" follow a state change in another
store (a read marker, a group row, a hidden message). If their append fails after that change
(a 503), the retry finds the change already made; appending the entry again with the same key
writes it if it is missing and nothing if it is there, so each lands exactly once. A ``delete``
for everyone is keyed too, so that overlapping attempts (a client retrying a call still in
flight) write it once.

The keys share the inbox store's idempotency table with clients' ``(sender_id,
client_msg_id)`` keys. Their owner part is negative: user and group ids are positive
Snowflakes, so no client key can ever collide with (and suppress) one of these.
"""

from __future__ import annotations


def _server_key(owner_id: int, name: str) -> tuple[int, str]:
    return -owner_id, name


def read_key(reader_id: int, conversation_id: str, up_to: int) -> tuple[int, str]:
    """The key of the ``read`` entry that tells of ``reader_id``'s marker at ``up_to``."""
    return _server_key(reader_id, f"read:{conversation_id}:{up_to}")


def group_event_key(group_id: int, version: int) -> tuple[int, str]:
    """The key of the ``group_event`` announcing the change that made ``version``."""
    return _server_key(group_id, f"group:{group_id}:v{version}")


def hide_key(user_id: int, msg_id: int) -> tuple[int, str]:
    """The key of the ``delete`` entry (scope ``me``) of ``user_id`` hiding ``msg_id``."""
    return _server_key(user_id, f"hide:{msg_id}")


def delete_key(sender_id: int, msg_id: int) -> tuple[int, str]:
    """The key of the ``delete`` entries (scope ``everyone``) of ``sender_id``'s ``msg_id``."""
    return _server_key(sender_id, f"delete:{msg_id}")
