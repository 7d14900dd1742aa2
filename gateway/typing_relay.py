"""Typing indicators: the ``typing`` op relays ``{op: "typing", conversation_id, user_id}`` to
the other participants' online devices. Never stored: typing is advisory and stale at once.

Each sender may relay at most one typing frame per conversation every ``interval_s`` (clients
send one per keystroke); frames inside the window are dropped silently, since the peers'
"is typing" state is already fresh and a ``rate_limited`` error would only be noise for a
frame the client need not retry.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.connection import Connection
from gateway.frames import ClientFrame, require_str
from inbox.core.ids import ConversationRef
from inbox.core.models import Caller
from inbox.ratelimit.port import RateLimiter

DEFAULT_INTERVAL_S = 2.0


class Participants(Protocol):
    """Who may type in a conversation, and to whom it is shown (``inbox.core.participants``)."""

    async def require(self, caller: Caller, conversation_id: str) -> ConversationRef:
        """The parsed id if the caller takes part; InvalidInput, NotFound or Forbidden else."""
        ...

    async def members(self, ref: ConversationRef) -> list[int]:
        """Every user taking part in the conversation."""
        ...


class FrameRelay(Protocol):
    """Sends frames to users' live connections on every node (``gateway.hub.Hub``)."""

    async def relay(self, users_to_frames: dict[int, dict[str, Any]], skip_device: int) -> None:
        """Send each user's frame to its connections, except device ``skip_device``."""
        ...


def typing_frame(conversation_id: str, user_id: int) -> dict[str, Any]:
    """The server's ``typing`` frame (ids as strings, docs/websocket.md)."""
    return {"op": "typing", "conversation_id": conversation_id, "user_id": str(user_id)}


def typing_audience(members: list[int], sender_id: int) -> list[int]:
    """Everyone in the conversation but the sender: its own devices see nothing."""
    return [user_id for user_id in dict.fromkeys(members) if user_id != sender_id]


def typing_key(user_id: int, conversation_id: str) -> str:
    """The rate-limit bucket of one user typing in one conversation."""
    return f"typing:{user_id}:{conversation_id}"


class TypingRelay:
    """Handles the ``typing`` op: check, coalesce, relay."""

    def __init__(self, participants: Participants, limiter: RateLimiter, relay: FrameRelay,
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self._participants = participants
        self._limiter = limiter
        self._relay = relay
        self._rate = 1 / interval_s

    async def typing(self, caller: Caller, conversation_id: str) -> bool:
        """Relay that ``caller`` is typing; False when coalesced into a recent relay.

        InvalidInput (malformed id), NotFound or Forbidden (not a participant) propagate, so
        the client gets an ``error`` frame naming its mistake.
        """
        ref = await self._participants.require(caller, conversation_id)
        if await self._limiter.acquire(typing_key(caller.user_id, ref.id), self._rate, 1) > 0:
            return False
        audience = typing_audience(await self._participants.members(ref), caller.user_id)
        if audience:
            frame = typing_frame(ref.id, caller.user_id)
            await self._relay.relay({user_id: frame for user_id in audience}, caller.device_id)
        return True

    async def op_typing(self, conn: Connection, frame: ClientFrame) -> None:
        """The ``typing`` op's handler (a feature of ``FrameHandlers``); no reply on success."""
        await self.typing(conn.caller, require_str(frame, "conversation_id"))
