"""Conversation ids: ``d:<low>:<high>`` for direct chats, ``g:<group_id>`` for groups."""

from __future__ import annotations

from dataclasses import dataclass

from inbox.core.errors import InvalidInput, NotFound

MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """A parsed conversation id: ``user_ids`` for a direct chat, ``group_id`` for a group."""

    id: str
    group_id: int | None = None
    user_ids: tuple[int, int] | None = None

    @property
    def is_group(self) -> bool:
        return self.group_id is not None


def direct_id(a: int, b: int) -> str:
    """The direct conversation between two users (the same user twice: notes to self)."""
    low, high = sorted((a, b))
    return f"d:{low}:{high}"


def group_conversation_id(group_id: int) -> str:
    return f"g:{group_id}"


def _parse_int(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ValueError(text)
    value = int(text)
    if value > MAX_ID:
        raise ValueError(text)
    return value


def _canonical_int(text: str) -> int:
    """A decimal id written as the server writes it (no leading zeros): conversation ids are
    keys, so ``d:07:9`` must not name a conversation apart from ``d:7:9``."""
    value = _parse_int(text)
    if text != str(value):
        raise ValueError(text)
    return value


def parse_conversation_id(cid: str) -> ConversationRef:
    """Parse ``cid``; malformed or not canonical -> InvalidInput (422), reversed direct ids ->
    NotFound (404)."""
    parts = cid.split(":")
    try:
        if parts[0] == "g" and len(parts) == 2:
            return ConversationRef(id=cid, group_id=_canonical_int(parts[1]))
        if parts[0] == "d" and len(parts) == 3:
            low, high = _canonical_int(parts[1]), _canonical_int(parts[2])
        else:
            raise ValueError(cid)
    except ValueError:
        raise InvalidInput(f"malformed conversation id {cid!r}") from None
    if low > high:
        raise NotFound(f"no conversation {cid!r} (did you mean {direct_id(low, high)!r}?)")
    return ConversationRef(id=cid, user_ids=(low, high))


def parse_id(value: str | int, what: str = "id") -> int:
    """Parse a Snowflake id given as a decimal string or an integer (API: both accepted)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be an id, got {value!r}")
    if isinstance(value, int):
        if 0 <= value <= MAX_ID:
            return value
        raise InvalidInput(f"{what} out of range: {value}")
    try:
        return _parse_int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a decimal id, got {value!r}") from None
