"""Publishes every durable append to the live bus, one event per inbox it landed in."""

from __future__ import annotations

from gateway.bus import Event, LiveBus
from gateway.delivery import live_event
from inbox.models import AppendBatch, Appended, Entry
from inbox.wire import entry_json


class LivePublisher:
    """An ``AppendListener`` that streams new entries to online devices via the bus."""

    def __init__(self, bus: LiveBus) -> None:
        self._bus = bus

    async def on_appended(self, batch: AppendBatch, appended: Appended) -> None:
        events: dict[int, list[Event]] = {}
        for user_id, position in appended.positions.items():
            entry = entry_json(Entry(position, batch.draft))
            events[user_id] = [live_event(entry, position, appended.previous[user_id])]
        await self._bus.publish(events)
