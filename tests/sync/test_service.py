"""SyncService.ack: the node's ack listener hears each ack before it is stored."""

from __future__ import annotations

from sync.service import SyncService


class Cursors:
    """The ``ack`` of an AccountStore, recording the order of events with the listener's."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.cursors: dict[int, int] = {}

    async def ack(self, device_id: int, cursor: int) -> int:
        self.events.append(f"stored {device_id}:{cursor}")
        self.cursors[device_id] = max(self.cursors.get(device_id, 0), cursor)
        return self.cursors[device_id]


async def test_an_ack_is_heard_before_it_is_stored() -> None:
    events: list[str] = []
    accounts = Cursors(events)
    sync = SyncService(None, accounts,  # type: ignore[arg-type]
                       on_ack=lambda device, cursor: events.append(f"heard {device}:{cursor}"))
    assert await sync.ack(7, 30) == 30
    assert await sync.ack(7, 20) == 30
    assert events == ["heard 7:30", "stored 7:30", "heard 7:20", "stored 7:20"]
