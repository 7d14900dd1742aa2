"""Publishes every durable append to the live bus, one event per inbox it landed in."""

from __future__ import annotations

from gateway.bus import Event, LiveBus
from gateway.delivery import live_event
from gateway.wire import entry_json
from inbox.core.models import Entry
from inbox.messages.service import Appends


class LivePublisher:
    """An ``AppendListener`` that streams new entries to online devices via the bus."""

    def __init__(self, bus: LiveBus) -> None:
        self._bus = bus

    async def on_appended(self, appends: Appends) -> None:
        """One bus publish for all of them; each user's events in append order."""
        events: dict[int, list[Event]] = {}
        for batch, appended in appends:
            for user_id, position in appended.positions.items():
                entry = entry_json(Entry(position, batch.draft))
                events.setdefault(user_id, []).append(
                    live_event(entry, position, appended.previous[user_id]))
        await self._bus.publish(events)
