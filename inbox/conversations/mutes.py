"""Muting a conversation: no pushes for it until a time (or forever)."""

from __future__ import annotations

from datetime import datetime

from inbox.conversations.port import MuteStore
from inbox.core.models import Caller
from inbox.core.participants import Participants


class MuteService:
    """Participants mute the conversations they take part in."""

    def __init__(self, participants: Participants, mutes: MuteStore) -> None:
        self._participants = participants
        self._mutes = mutes

    async def mute(self, caller: Caller, conversation_id: str, until: datetime | None) -> None:
        """Mute until ``until`` (None: forever; a past time unmutes); participants only."""
        ref = await self._participants.require(caller, conversation_id)
        until_ms = None if until is None else int(until.timestamp() * 1000)
        await self._mutes.set_mute(caller.user_id, ref.id, until_ms)
